import { execFile } from 'node:child_process';
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigLoader, fromWebIdentity, parseConfigFile, resolveStsTarget, SdkStsGateway, VaultError } from '@vault/core';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStsStandIn, type StsStandIn } from './stsStandIn.js';

const ROLE = 'arn:aws:iam::111111111111:role/github-deploy';
const ISSUER = 'https://token.actions.githubusercontent.com';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9yZy9hcHAifQ.c2lnbmF0dXJl';
const OTHER_ISSUER_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.b3RoZXItaXNzdWVy.c2lnbmF0dXJl';
const EXPIRED_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.ZXhwaXJlZA.c2lnbmF0dXJl';

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('STS stand-in: AssumeRoleWithWebIdentity', () => {
  let sts: StsStandIn;
  let dir: string;
  beforeAll(async () => {
    sts = await startStsStandIn();
    sts.addRole({ arn: ROLE, webIdentity: [{ issuer: ISSUER, subjects: ['repo:org/app:ref:refs/heads/main'] }], maxSessionDurationSeconds: 7200 });
    sts.addWebIdentityToken({ token: TOKEN, issuer: ISSUER, subject: 'repo:org/app:ref:refs/heads/main' });
    sts.addWebIdentityToken({ token: OTHER_ISSUER_TOKEN, issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/ABC', subject: 'system:serviceaccount:default:app' });
    sts.addWebIdentityToken({ token: EXPIRED_TOKEN, issuer: ISSUER, subject: 'repo:org/app:ref:refs/heads/main', expiresAt: 0 });
    dir = mkdtempSync(join(tmpdir(), 'vault-webid-standin-'));
  });
  afterAll(() => sts.close());
  beforeEach(() => sts.resetCalls());

  const profile = (token: string) => {
    const file = join(dir, 'token');
    writeFileSync(file, token);
    const text = `[profile ci]\nrole_arn = ${ROLE}\nweb_identity_token_file = ${file}\nregion = eu-west-1\n`;
    return new ConfigLoader(parseConfigFile(text, join(dir, 'config')), { env: {} }).load('ci');
  };

  it("vault's gateway sends it unsigned; the credentials it gets back are the role's and sign later calls", async () => {
    const p = profile(TOKEN);
    const gateway = new SdkStsGateway({ maxAttempts: 1 });
    const target = resolveStsTarget(p, { AWS_ENDPOINT_URL_STS: sts.url });
    const creds = await fromWebIdentity(gateway, target, p, { roleSessionName: 'run-1', durationSeconds: 7200 }, {});
    expect(sts.calls).toEqual([
      expect.objectContaining({ action: 'AssumeRoleWithWebIdentity', accessKeyId: '', roleArn: ROLE, roleSessionName: 'run-1', webIdentitySubject: 'repo:org/app:ref:refs/heads/main', ok: true }),
    ]);
    expect(creds.assumedRoleArn).toBe('arn:aws:sts::111111111111:assumed-role/github-deploy/run-1');
    const identity = await gateway.getCallerIdentity(creds, target);
    expect(identity.arn).toBe('arn:aws:sts::111111111111:assumed-role/github-deploy/run-1');
    expect(sts.describeKey(creds.accessKeyId)).toMatchObject({ kind: 'role', roleArn: ROLE, roleSessionName: 'run-1' });
  });

  it('a token from an issuer the role does not trust: AccessDenied, said as a web identity problem', async () => {
    const p = profile(OTHER_ISSUER_TOKEN);
    const target = resolveStsTarget(p, { AWS_ENDPOINT_URL_STS: sts.url });
    const error = await fromWebIdentity(new SdkStsGateway({ maxAttempts: 1 }), target, p, { roleSessionName: 'run-1' }, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VaultError);
    expect((error as VaultError).code).toBe('STS_ACCESS_DENIED');
    expect((error as VaultError).toLine()).toBe(
      `AssumeRoleWithWebIdentity of ${ROLE} for profile ci failed: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity; check the role's trust policy names the token's OIDC provider (a Federated principal) and its claims`,
    );
  });

  it('an expired token: ExpiredTokenException, with a hint about the token rather than vault clear', async () => {
    const p = profile(EXPIRED_TOKEN);
    const target = resolveStsTarget(p, { AWS_ENDPOINT_URL_STS: sts.url });
    const error = (await fromWebIdentity(new SdkStsGateway({ maxAttempts: 1 }), target, p, { roleSessionName: 'run-1' }, {}).catch((e: unknown) => e)) as VaultError;
    expect(error.code).toBe('STS_EXPIRED_TOKEN');
    expect(error.hint).toBe('the web identity token has expired; get a fresh one from its issuer (CI and EKS rotate the file)');
  });

  it('a token nobody issued: InvalidIdentityToken to the JS SDK', async () => {
    const client = new STSClient({ region: 'eu-west-1', endpoint: sts.url, credentials: { accessKeyId: '', secretAccessKey: '' } });
    const error = (await client
      .send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE, RoleSessionName: 'x1', WebIdentityToken: 'eyJ.not-issued.sig' }))
      .catch((e: unknown) => e)) as { name: string };
    client.destroy();
    expect(error.name).toBe('InvalidIdentityTokenException');
  });

  it('the AWS CLI, which sends it unsigned with no credentials configured, gets the role', async () => {
    const out = await run(
      '/usr/bin/aws',
      ['sts', 'assume-role-with-web-identity', '--role-arn', ROLE, '--role-session-name', 'cli-run', '--web-identity-token', TOKEN, '--endpoint-url', sts.url, '--region', 'eu-west-1', '--output', 'json'],
      { PATH: process.env.PATH, HOME: dir, AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none') },
    );
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toMatchObject({ AssumedRoleUser: { Arn: 'arn:aws:sts::111111111111:assumed-role/github-deploy/cli-run' }, Provider: ISSUER });
    expect(sts.calls).toEqual([expect.objectContaining({ action: 'AssumeRoleWithWebIdentity', accessKeyId: '', ok: true })]);
  });
});
