import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import { parseConfigFile } from '../config/configFile.js';
import { ConfigLoader } from '../config/configLoader.js';
import type { Credentials } from '../credentials.js';
import { VaultError } from '../errors.js';
import { CredentialKeyring } from '../keyring/credentialKeyring.js';
import { MemoryKeyring } from '../keyring/memoryKeyring.js';
import { CredentialCache } from '../keyring/credentialCache.js';
import type { AssumeRoleInput, AssumeRoleWithWebIdentityInput, GetSessionTokenInput, StsGateway, StsTarget } from '../sts/stsGateway.js';
import { CredentialChain, type ChainOptions } from './credentialChain.js';
import type { MetadataProviders } from './sources/fromCredentialSource.js';

type Call =
  | { op: 'GetSessionToken'; signedWith: string; input: GetSessionTokenInput }
  | { op: 'AssumeRole'; signedWith: string; input: AssumeRoleInput }
  | { op: 'AssumeRoleWithWebIdentity'; target: StsTarget; input: AssumeRoleWithWebIdentityInput };

class FakeSts implements StsGateway {
  calls: Call[] = [];
  private n = 0;
  constructor(private readonly clock: ManualClock) {}
  private mint(prefix: string, seconds: number) {
    this.n += 1;
    return { accessKeyId: `${prefix}${this.n}`, secretAccessKey: `secret-${this.n}`, sessionToken: `token-${this.n}`, expiration: new Date(this.clock.now() + seconds * 1000) };
  }
  async getSessionToken(c: Credentials, _target: StsTarget, input: GetSessionTokenInput) {
    this.calls.push({ op: 'GetSessionToken', signedWith: c.accessKeyId, input });
    return this.mint('ASIASESSION', input.durationSeconds ?? 43200);
  }
  async assumeRole(c: Credentials, _target: StsTarget, input: AssumeRoleInput) {
    this.calls.push({ op: 'AssumeRole', signedWith: c.accessKeyId, input });
    return this.mint('ASIAROLE', input.durationSeconds ?? 3600);
  }
  async assumeRoleWithWebIdentity(target: StsTarget, input: AssumeRoleWithWebIdentityInput) {
    this.calls.push({ op: 'AssumeRoleWithWebIdentity', target, input });
    return this.mint('ASIAWEBID', input.durationSeconds ?? 3600);
  }
  async getCallerIdentity() {
    return { account: '', arn: '', userId: '' };
  }
}

async function errorOf(promise: Promise<unknown>): Promise<VaultError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VaultError) return error;
    throw error;
  }
  throw new Error('expected a VaultError');
}

describe('web identity and credential_source in the chain', () => {
  let dir: string;
  let tokenFile: string;
  let clock: ManualClock;
  let sts: FakeSts;
  let keyring: MemoryKeyring;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vault-webid-'));
    tokenFile = join(dir, 'token');
    clock = new ManualClock(Date.UTC(2026, 0, 1, 9));
    sts = new FakeSts(clock);
    keyring = new MemoryKeyring();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const config = () => `
[profile ci]
role_arn = arn:aws:iam::111111111111:role/ci
web_identity_token_file = ${tokenFile}
role_session_name = github-run-42
region = eu-west-1

[profile ci-process]
role_arn = arn:aws:iam::111111111111:role/ci
web_identity_token_process = printf '  token-from-process\\n'

[profile deploy]
source_profile = ci
role_arn = arn:aws:iam::222222222222:role/deploy
duration_seconds = 7200

[profile from-env]
role_arn = arn:aws:iam::333333333333:role/laptop-or-ci
credential_source = Environment

[profile from-env-mfa]
role_arn = arn:aws:iam::333333333333:role/laptop-or-ci
credential_source = Environment
mfa_serial = arn:aws:iam::333333333333:mfa/jane

[profile from-ecs]
role_arn = arn:aws:iam::444444444444:role/task-deploy
credential_source = EcsContainer
duration_seconds = 7200

[profile from-ec2]
role_arn = arn:aws:iam::444444444444:role/instance-deploy
credential_source = Ec2InstanceMetadata
`;

  const chain = (profile: string, options: ChainOptions = {}, env: Record<string, string> = {}, providers?: () => Promise<MetadataProviders>) =>
    new CredentialChain(
      new ConfigLoader(parseConfigFile(config(), join(dir, 'config')), { env }).load(profile),
      {
        credentials: new CredentialKeyring(keyring),
        cache: new CredentialCache(keyring),
        sts,
        clock,
        env,
        mfa: async () => '654321',
        credentialSource: providers ? { providers } : undefined,
      },
      options,
    );

  it('AssumeRoleWithWebIdentity with the token file, the role_session_name and the profile region', async () => {
    writeFileSync(tokenFile, 'eyJ.first-token.sig\n');
    const creds = await chain('ci').credentials();
    expect(sts.calls).toEqual([
      {
        op: 'AssumeRoleWithWebIdentity',
        target: expect.objectContaining({ region: 'eu-west-1' }),
        input: { roleArn: 'arn:aws:iam::111111111111:role/ci', roleSessionName: 'github-run-42', webIdentityToken: 'eyJ.first-token.sig', durationSeconds: 3600 },
      },
    ]);
    expect(creds.accessKeyId).toBe('ASIAWEBID1');
  });

  it('re-reads the token file at every refresh, so a rotated token is the one sent', async () => {
    const daemonChain = chain('ci', { roleCache: false });
    writeFileSync(tokenFile, 'eyJ.first-token.sig');
    await daemonChain.credentials();
    writeFileSync(tokenFile, 'eyJ.rotated-token.sig');
    clock.advance(50 * 60_000);
    await daemonChain.credentials();
    expect(sts.calls.map((c) => (c.op === 'AssumeRoleWithWebIdentity' ? c.input.webIdentityToken : c.op))).toEqual(['eyJ.first-token.sig', 'eyJ.rotated-token.sig']);
  });

  it('caches the role credentials in the keyring like other role credentials: a second exec makes no call', async () => {
    writeFileSync(tokenFile, 'eyJ.first-token.sig');
    const first = await chain('ci').credentials();
    const second = await chain('ci').credentials();
    expect(second.accessKeyId).toBe(first.accessKeyId);
    expect(sts.calls).toHaveLength(1);
  });

  it('web_identity_token_process: its output, trimmed, is the token; the default session name is vault-<time>', async () => {
    await chain('ci-process').credentials();
    expect(sts.calls[0]).toMatchObject({
      op: 'AssumeRoleWithWebIdentity',
      input: { webIdentityToken: 'token-from-process', roleSessionName: `vault-${clock.now()}` },
    });
  });

  it('a role on top of a web identity profile: AssumeRole signed with the web identity credentials, capped at 1 h (role chaining)', async () => {
    writeFileSync(tokenFile, 'eyJ.first-token.sig');
    const creds = await chain('deploy').credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['AssumeRoleWithWebIdentity', 'AssumeRole']);
    expect(sts.calls[1]).toMatchObject({ signedWith: 'ASIAWEBID1', input: { roleArn: 'arn:aws:iam::222222222222:role/deploy', durationSeconds: 3600 } });
    expect(creds.accessKeyId).toBe('ASIAROLE2');
  });

  it('a missing token file: one line naming the profile, the setting and the path, and no STS call', async () => {
    const error = await errorOf(chain('ci').credentials());
    expect(error.code).toBe('PROFILE_NO_CREDENTIALS');
    expect(error.message).toBe(`profile ci: web_identity_token_file ${tokenFile} does not exist`);
    expect(sts.calls).toEqual([]);
  });

  it('an empty (whitespace-only) token file: one line naming the profile and the setting, and no STS call', async () => {
    writeFileSync(tokenFile, ' \n');
    const error = await errorOf(chain('ci').credentials());
    expect(error.message).toBe(`profile ci: web_identity_token_file ${tokenFile} is empty`);
    expect(sts.calls).toEqual([]);
  });

  it('never asks for an MFA code on a web identity chain (nobody is there to type one)', async () => {
    writeFileSync(tokenFile, 'eyJ.first-token.sig');
    expect(await chain('ci').needsMfaCode()).toBe(false);
  });

  it('credential_source = Environment: the environment key signs AssumeRole, with no GetSessionToken', async () => {
    const env = { AWS_ACCESS_KEY_ID: 'AKIAENVIRONMENT00001', AWS_SECRET_ACCESS_KEY: 'env-secret' };
    const creds = await chain('from-env', {}, env).credentials();
    expect(sts.calls).toEqual([{ op: 'AssumeRole', signedWith: 'AKIAENVIRONMENT00001', input: expect.objectContaining({ roleArn: 'arn:aws:iam::333333333333:role/laptop-or-ci', durationSeconds: 3600 }) }]);
    expect(creds.accessKeyId).toBe('ASIAROLE1');
  });

  it('credential_source = Environment with mfa_serial: the code goes on the AssumeRole, as the AWS CLI sends it', async () => {
    const env = { AWS_ACCESS_KEY_ID: 'AKIAENVIRONMENT00001', AWS_SECRET_ACCESS_KEY: 'env-secret' };
    const c = chain('from-env-mfa', {}, env);
    expect(await c.needsMfaCode()).toBe(true);
    await c.credentials();
    expect(sts.calls).toEqual([
      { op: 'AssumeRole', signedWith: 'AKIAENVIRONMENT00001', input: expect.objectContaining({ serialNumber: 'arn:aws:iam::333333333333:mfa/jane', tokenCode: '654321' }) },
    ]);
  });

  it('credential_source = Environment with no key in the environment: one line, no STS call', async () => {
    const error = await errorOf(chain('from-env', {}, { AWS_ACCESS_KEY_ID: 'AKIAENVIRONMENT00001' }).credentials());
    expect(error.code).toBe('PROFILE_NO_CREDENTIALS');
    expect(error.message).toBe('profile from-env: credential_source = Environment, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set');
    expect(sts.calls).toEqual([]);
  });

  it('credential_source = EcsContainer: the container variables come from the chain environment; a role assumed from the task role is capped at 1 h', async () => {
    const seen: unknown[] = [];
    const providers = async (): Promise<MetadataProviders> => ({
      fromContainer: (options) => {
        seen.push(options);
        return async () => ({ accessKeyId: 'ASIATASKROLE0000001', secretAccessKey: 'task-secret', sessionToken: 'task-token', expiration: new Date(clock.now() + 6 * 3600_000) });
      },
      fromInstanceMetadata: () => {
        throw new Error('not this one');
      },
    });
    const env = { AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://127.0.0.1:9911/creds', AWS_CONTAINER_AUTHORIZATION_TOKEN: 'container-auth' };
    await chain('from-ecs', {}, env, providers).credentials();
    expect(seen).toEqual([expect.objectContaining({ awsContainerCredentialsFullUri: 'http://127.0.0.1:9911/creds', awsContainerAuthorizationToken: 'container-auth' })]);
    expect(sts.calls).toEqual([{ op: 'AssumeRole', signedWith: 'ASIATASKROLE0000001', input: expect.objectContaining({ durationSeconds: 3600 }) }]);
  });

  it('credential_source = EcsContainer outside a container: one line naming the variables, the SDK never loaded', async () => {
    let loaded = false;
    const providers = async (): Promise<MetadataProviders> => {
      loaded = true;
      throw new Error('not loaded');
    };
    const error = await errorOf(chain('from-ecs', {}, {}, providers).credentials());
    expect(error.message).toBe('profile from-ecs: credential_source = EcsContainer, but neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set');
    expect(loaded).toBe(false);
    expect(sts.calls).toEqual([]);
  });

  it('credential_source = Ec2InstanceMetadata: the instance role signs AssumeRole; a metadata failure is one line', async () => {
    let fail = false;
    const providers = async (): Promise<MetadataProviders> => ({
      fromContainer: () => {
        throw new Error('not this one');
      },
      fromInstanceMetadata: () => async () => {
        if (fail) throw new Error('Could not load credentials from any providers');
        return { accessKeyId: 'ASIAINSTANCE0000001', secretAccessKey: 'instance-secret', sessionToken: 'instance-token' };
      },
    });
    await chain('from-ec2', {}, {}, providers).credentials();
    expect(sts.calls).toEqual([{ op: 'AssumeRole', signedWith: 'ASIAINSTANCE0000001', input: expect.objectContaining({ roleArn: 'arn:aws:iam::444444444444:role/instance-deploy' }) }]);
    fail = true;
    const error = await errorOf(chain('from-ec2', { roleCache: false }, {}, providers).credentials());
    expect(error.message).toBe(
      'profile from-ec2: credential_source = Ec2InstanceMetadata, but the EC2 instance metadata service gave no credentials (Could not load credentials from any providers)',
    );
  });
});
