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
import { CredentialCache, parseCacheKey } from '../keyring/credentialCache.js';
import type { AssumeRoleInput, GetSessionTokenInput, StsGateway, StsTarget } from '../sts/stsGateway.js';
import { CredentialChain, type ChainOptions } from './credentialChain.js';

const CONFIG = `
[profile central-account]
region = ap-northeast-1
mfa_serial = arn:aws:iam::111111111111:mfa/central-user

[profile account-a]
include_profile = central-account
role_arn = arn:aws:iam::222222222222:role/account-a-assume-role

[profile account-b]
source_profile = central-account
role_arn = arn:aws:iam::333333333333:role/account-b-role
mfa_serial = arn:aws:iam::111111111111:mfa/central-user
duration_seconds = 7200
external_id = optional-external-id

[profile chained]
source_profile = account-b
role_arn = arn:aws:iam::444444444444:role/deeper
duration_seconds = 7200

[profile plain]
region = eu-west-1

[profile plain-role]
source_profile = plain
role_arn = arn:aws:iam::555555555555:role/no-mfa
`;

interface Call {
  op: 'GetSessionToken' | 'AssumeRole';
  signedWith: string;
  target: StsTarget;
  input: GetSessionTokenInput | AssumeRoleInput;
}

/** Records every call and mints credentials whose key id says where they came from. */
class FakeSts implements StsGateway {
  calls: Call[] = [];
  private n = 0;
  constructor(private readonly clock: ManualClock) {}
  private mint(prefix: string, seconds: number) {
    this.n += 1;
    return {
      accessKeyId: `${prefix}${this.n}`,
      secretAccessKey: `secret-${this.n}`,
      sessionToken: `token-${this.n}`,
      expiration: new Date(this.clock.now() + seconds * 1000),
    };
  }
  async getSessionToken(c: Credentials, target: StsTarget, input: GetSessionTokenInput) {
    this.calls.push({ op: 'GetSessionToken', signedWith: c.accessKeyId, target, input });
    return this.mint('ASIASESSION', input.durationSeconds ?? 43200);
  }
  async assumeRole(c: Credentials, target: StsTarget, input: AssumeRoleInput) {
    this.calls.push({ op: 'AssumeRole', signedWith: c.accessKeyId, target, input });
    return { ...this.mint('ASIAROLE', input.durationSeconds ?? 3600), assumedRoleArn: input.roleArn.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/') + `/${input.roleSessionName}` };
  }
  async getCallerIdentity() {
    return { account: '', arn: '', userId: '' };
  }
}

/** An error shaped as the SDK throws it for an AWS error reply. */
function awsError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 403 } });
}

describe('CredentialChain', () => {
  let clock: ManualClock;
  let sts: FakeSts;
  let keyring: MemoryKeyring;
  let codes: string[];
  const config = new ConfigLoader(parseConfigFile(CONFIG, '/c'), { env: {} });

  beforeEach(async () => {
    clock = new ManualClock(Date.UTC(2026, 0, 1, 9));
    sts = new FakeSts(clock);
    keyring = new MemoryKeyring();
    codes = [];
    await new CredentialKeyring(keyring).set('central-account', { accessKeyId: 'AKIACENTRAL000000001', secretAccessKey: 'central-secret' });
    await new CredentialKeyring(keyring).set('plain', { accessKeyId: 'AKIAPLAIN00000000001', secretAccessKey: 'plain-secret' });
  });

  const chain = (profile: string, options: ChainOptions = {}, env: Record<string, string> = {}) =>
    new CredentialChain(
      config.load(profile),
      {
        credentials: new CredentialKeyring(keyring),
        cache: new CredentialCache(keyring),
        sts,
        clock,
        env,
        mfa: async ({ serial }) => {
          codes.push(serial);
          return '123456';
        },
      },
      options,
    );

  it('account-a: one MFA session from the included key, then AssumeRole over it', async () => {
    const creds = await chain('account-a').credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['GetSessionToken', 'AssumeRole']);
    expect(sts.calls[0]).toMatchObject({ signedWith: 'AKIACENTRAL000000001', input: { serialNumber: 'arn:aws:iam::111111111111:mfa/central-user', tokenCode: '123456', durationSeconds: 8 * 3600 } });
    expect(sts.calls[1]).toMatchObject({ signedWith: 'ASIASESSION1', input: { roleArn: 'arn:aws:iam::222222222222:role/account-a-assume-role', serialNumber: undefined, tokenCode: undefined } });
    expect(creds.accessKeyId).toBe('ASIAROLE2');
    expect(codes).toHaveLength(1);
  });

  it('a second exec reuses the cached role credentials: no STS call, no prompt', async () => {
    await chain('account-a').credentials();
    sts.calls = [];
    clock.advance(30 * 60_000);
    const again = await chain('account-a').credentials();
    expect(again.accessKeyId).toBe('ASIAROLE2');
    expect(sts.calls).toHaveLength(0);
    expect(codes).toHaveLength(1);
  });

  it('one MFA code serves many roles: account-b reuses the MFA session account-a made', async () => {
    await chain('account-a').credentials();
    await chain('account-b').credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['GetSessionToken', 'AssumeRole', 'AssumeRole']);
    expect(sts.calls[2]).toMatchObject({ signedWith: 'ASIASESSION1', input: { externalId: 'optional-external-id', durationSeconds: 7200 } });
    expect(codes).toHaveLength(1);
  });

  it('role credentials are re-fetched below 15 min of life, the MFA session below 5 min', async () => {
    await chain('account-a').credentials();
    clock.advance(46 * 60_000); // 14 min left on the 1 h role
    await chain('account-a').credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['GetSessionToken', 'AssumeRole', 'AssumeRole']);
    clock.advance(8 * 3600_000 - 46 * 60_000 - 4 * 60_000); // 4 min left on the 8 h MFA session
    await chain('account-a').credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['GetSessionToken', 'AssumeRole', 'AssumeRole', 'GetSessionToken', 'AssumeRole']);
    expect(codes).toHaveLength(2);
  });

  it('AWS_MIN_TTL overrides both windows', async () => {
    await chain('account-a', {}, { AWS_MIN_TTL: '50m' }).credentials();
    clock.advance(11 * 60_000); // 49 min left
    await chain('account-a', {}, { AWS_MIN_TTL: '50m' }).credentials();
    expect(sts.calls.filter((c) => c.op === 'AssumeRole')).toHaveLength(2);
  });

  it('a chain of two roles caps the second hop at one hour', async () => {
    await chain('chained').credentials();
    const hops = sts.calls.filter((c) => c.op === 'AssumeRole').map((c) => (c.input as AssumeRoleInput).durationSeconds);
    expect(hops).toEqual([7200, 3600]);
    expect(sts.calls.at(-1)!.signedWith).toBe('ASIAROLE2');
  });

  it('--duration sets the final role duration', async () => {
    await chain('account-a', { durationSeconds: 1800 }).credentials();
    expect((sts.calls[1]!.input as AssumeRoleInput).durationSeconds).toBe(1800);
  });

  it('--no-session: no GetSessionToken, the MFA code goes with AssumeRole signed by the long-term key', async () => {
    await chain('account-a', { noSession: true }).credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['AssumeRole']);
    expect(sts.calls[0]).toMatchObject({ signedWith: 'AKIACENTRAL000000001', input: { serialNumber: 'arn:aws:iam::111111111111:mfa/central-user', tokenCode: '123456' } });
  });

  it('a root profile without roles gets a 1 h session token (MFA when configured)', async () => {
    const creds = await chain('central-account').credentials();
    expect(sts.calls).toHaveLength(1);
    expect(sts.calls[0]!.input).toMatchObject({ durationSeconds: 3600, tokenCode: '123456' });
    expect(creds.sessionToken).toBe('token-1');
  });

  it('a root profile with --no-session hands out its long-term key without any call', async () => {
    const creds = await chain('plain', { noSession: true }).credentials();
    expect(sts.calls).toHaveLength(0);
    expect(creds.accessKeyId).toBe('AKIAPLAIN00000000001');
  });

  it('a role without MFA is assumed straight from the long-term key, no prompt', async () => {
    await chain('plain-role').credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['AssumeRole']);
    expect(sts.calls[0]!.signedWith).toBe('AKIAPLAIN00000000001');
    expect(codes).toHaveLength(0);
  });

  it('concurrent callers share one resolution', async () => {
    const c = chain('account-a');
    await Promise.all(Array.from({ length: 50 }, () => c.credentials()));
    expect(sts.calls).toHaveLength(2);
    expect(codes).toHaveLength(1);
  });

  it('STS calls go to the endpoint the environment names', async () => {
    await chain('account-a', {}, { AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:1234' }).credentials();
    expect(sts.calls.every((c) => c.target.endpoint === 'http://127.0.0.1:1234')).toBe(true);
    expect(sts.calls[0]!.target.region).toBe('ap-northeast-1');
  });

  it('sessions are cached in the keyring under aws-vault key names, never elsewhere', async () => {
    await chain('account-a').credentials();
    const keys = (await keyring.keys()).map(parseCacheKey).filter(Boolean);
    expect(keys.map((k) => [k!.type, k!.profile])).toEqual(
      expect.arrayContaining([
        ['sts.GetSessionToken', 'central-account'],
        ['sts.AssumeRole', 'account-a'],
      ]),
    );
    expect((await keyring.keys()).find((k) => k.startsWith('sts.GetSessionToken'))).toMatch(
      /^sts\.GetSessionToken,Y2VudHJhbC1hY2NvdW50,YXJuOmF3czppYW06OjExMTExMTExMTExMTptZmEvY2VudHJhbC11c2Vy,\d+$/,
    );
  });

  it('a profile with no stored key and no source says what to run', async () => {
    await keyring.remove('central-account');
    const error = await chain('account-a').credentials().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VaultError);
    expect((error as VaultError).code).toBe('PROFILE_NO_CREDENTIALS');
    expect((error as VaultError).toLine()).toMatch(/vault add account-a/);
  });

  it('a cached MFA session STS calls expired is dropped: one new MFA code, a new MFA session, and the role', async () => {
    await chain('account-a').credentials();
    clock.advance(70 * 60_000); // the role credentials are stale, the MFA session looks alive
    const realAssume = sts.assumeRole.bind(sts);
    sts.assumeRole = async (c, target, input) => {
      if (c.accessKeyId === 'ASIASESSION1') {
        sts.calls.push({ op: 'AssumeRole', signedWith: c.accessKeyId, target, input });
        throw awsError('ExpiredToken', 'The security token included in the request is expired');
      }
      return realAssume(c, target, input);
    };
    const creds = await chain('account-a').credentials();
    expect(sts.calls.slice(2).map((c) => `${c.op} ${c.signedWith}`)).toEqual([
      'AssumeRole ASIASESSION1',
      'GetSessionToken AKIACENTRAL000000001',
      'AssumeRole ASIASESSION3',
    ]);
    expect(creds.accessKeyId).toBe('ASIAROLE4');
    expect(codes).toHaveLength(2);
    // The dead session is gone from the keyring; the new one is what the next command finds.
    const cachedSessions = (await keyring.keys()).map(parseCacheKey).filter((k) => k?.type === 'sts.GetSessionToken');
    expect(cachedSessions).toHaveLength(1);
    expect(cachedSessions[0]!.expiration.getTime()).toBe(clock.now() + 8 * 3600_000);
  });

  it('a rejected session is dropped once: when the new one is rejected too, the error comes through', async () => {
    await chain('account-a').credentials();
    clock.advance(70 * 60_000);
    sts.assumeRole = async (c, target, input) => {
      sts.calls.push({ op: 'AssumeRole', signedWith: c.accessKeyId, target, input });
      throw awsError('InvalidClientTokenId', 'The security token included in the request is invalid');
    };
    const error = await chain('account-a').credentials().catch((e: unknown) => e);
    expect((error as VaultError).code).toBe('STS_INVALID_CLIENT_TOKEN');
    expect(sts.calls.slice(2).map((c) => c.op)).toEqual(['AssumeRole', 'GetSessionToken', 'AssumeRole']);
  });

  it('an error that is not about the session (AccessDenied) keeps the cached MFA session', async () => {
    await chain('account-a').credentials();
    clock.advance(70 * 60_000);
    sts.assumeRole = async () => {
      throw awsError('AccessDenied', 'User: arn:aws:iam::111111111111:user/central-user is not authorized to perform: sts:AssumeRole');
    };
    await expect(chain('account-a').credentials()).rejects.toMatchObject({ code: 'STS_ACCESS_DENIED' });
    expect(sts.calls.filter((c) => c.op === 'GetSessionToken')).toHaveLength(1);
    expect(codes).toHaveLength(1);
  });

  it('renewMfaSession makes a fresh GetSessionToken with the given code', async () => {
    const c = chain('account-a');
    await c.credentials();
    await c.renewMfaSession('654321');
    expect(sts.calls.at(-1)).toMatchObject({ op: 'GetSessionToken', input: { tokenCode: '654321' } });
    expect(c.mfaSessionExpiration()?.getTime()).toBe(clock.now() + 8 * 3600_000);
  });
});

describe('CredentialChain.needsMfaCode', () => {
  it('is true before the first MFA session and false while one is cached', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const keyring = new MemoryKeyring();
    await new CredentialKeyring(keyring).set('central-account', { accessKeyId: 'AKIACENTRAL000000001', secretAccessKey: 's' });
    const make = () =>
      new CredentialChain(new ConfigLoader(parseConfigFile(CONFIG, '/c')).load('account-a'), {
        credentials: new CredentialKeyring(keyring),
        cache: new CredentialCache(keyring),
        sts: new FakeSts(clock),
        clock,
        env: {},
        mfa: async () => '123456',
      });
    expect(await make().needsMfaCode()).toBe(true);
    await make().credentials();
    expect(await make().needsMfaCode()).toBe(false);
    clock.advance(8 * 3600_000 - 4 * 60_000);
    expect(await make().needsMfaCode()).toBe(true);
  });
});

describe('CredentialChain: what cached credentials must still be worth', () => {
  let clock: ManualClock;
  let sts: FakeSts;
  let keyring: MemoryKeyring;
  let codes: number;
  const config = new ConfigLoader(parseConfigFile(CONFIG, '/c'), { env: {} });

  beforeEach(async () => {
    clock = new ManualClock(Date.UTC(2026, 0, 1, 9));
    sts = new FakeSts(clock);
    keyring = new MemoryKeyring();
    codes = 0;
    await new CredentialKeyring(keyring).set('central-account', { accessKeyId: 'AKIACENTRAL000000001', secretAccessKey: 'central-secret' });
  });

  const chain = (profile: string, options: ChainOptions = {}) =>
    new CredentialChain(
      config.load(profile),
      {
        credentials: new CredentialKeyring(keyring),
        cache: new CredentialCache(keyring),
        sts,
        clock,
        env: {},
        mfa: async () => {
          codes++;
          return '123456';
        },
      },
      options,
    );

  it('minLifeMs: a GetSessionToken-only profile does not hand out cached credentials with less life left', async () => {
    await chain('central-account').credentials();
    clock.advance(30 * 60_000); // 30 min left on the 1 h session
    expect(await chain('central-account', { minLifeMs: 40 * 60_000 }).needsMfaCode()).toBe(true);
    const creds = await chain('central-account', { minLifeMs: 40 * 60_000 }).credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['GetSessionToken', 'GetSessionToken']);
    expect(creds.expiration!.getTime() - clock.now()).toBe(3600_000);
    // Without it the same cached credentials are reused, as aws-vault does.
    expect(await chain('central-account').needsMfaCode()).toBe(false);
  });

  it('minLifeMs does not apply to the MFA session behind a role: it only signs the AssumeRole', async () => {
    await chain('account-a').credentials();
    clock.advance(7 * 3600_000); // 1 h left on the 8 h MFA session
    expect(await chain('account-a', { minLifeMs: 2 * 3600_000, roleCache: false }).needsMfaCode()).toBe(false);
    await chain('account-a', { minLifeMs: 2 * 3600_000, roleCache: false }).credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['GetSessionToken', 'AssumeRole', 'AssumeRole']);
  });

  it('an explicit --duration on a GetSessionToken-only profile is not served from cached credentials that ends sooner', async () => {
    await chain('central-account').credentials();
    clock.advance(10 * 60_000); // 50 min left
    expect(await chain('central-account', { durationSeconds: 3600 }).needsMfaCode()).toBe(true);
    const creds = await chain('central-account', { durationSeconds: 3600 }).credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['GetSessionToken', 'GetSessionToken']);
    expect(creds.expiration!.getTime() - clock.now()).toBe(3600_000);
    expect(codes).toBe(2);
    // A shorter --duration is still served by the cached credentials that outlive it.
    await chain('central-account', { durationSeconds: 1800 }).credentials();
    expect(sts.calls).toHaveLength(2);
  });
});

describe('CredentialChain over a credential_process', () => {
  let dir: string;
  let clock: ManualClock;
  let sts: FakeSts;
  let keyring: MemoryKeyring;
  let codes: number;
  let config: ConfigLoader;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), `vault-chain-fixes-proc-${process.pid}-`));
    const longTerm = join(dir, 'long-term.sh');
    writeFileSync(longTerm, `echo '{"Version":1,"AccessKeyId":"AKIAPROCESS000000001","SecretAccessKey":"process-secret"}'\n`, { mode: 0o700 });
    const temporary = join(dir, 'temporary.sh');
    writeFileSync(
      temporary,
      `echo '{"Version":1,"AccessKeyId":"ASIAPROCESS000000001","SecretAccessKey":"process-secret","SessionToken":"process-token","Expiration":"2026-01-01T12:00:00Z"}'\n`,
      { mode: 0o700 },
    );
    config = new ConfigLoader(
      parseConfigFile(
        `
[profile process-mfa]
credential_process = sh ${longTerm}
mfa_serial = arn:aws:iam::111111111111:mfa/central-user

[profile process-temporary-mfa]
credential_process = sh ${temporary}
mfa_serial = arn:aws:iam::111111111111:mfa/central-user
role_arn = arn:aws:iam::666666666666:role/from-process

[profile process-role]
credential_process = sh ${temporary}
role_arn = arn:aws:iam::666666666666:role/from-process
duration_seconds = 7200
`,
        '/c',
      ),
      { env: {} },
    );
    clock = new ManualClock(Date.UTC(2026, 0, 1, 9));
    sts = new FakeSts(clock);
    keyring = new MemoryKeyring();
    codes = 0;
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const chain = (profile: string) =>
    new CredentialChain(config.load(profile), {
      credentials: new CredentialKeyring(keyring),
      cache: new CredentialCache(keyring),
      sts,
      clock,
      env: {},
      mfa: async () => {
        codes++;
        return '123456';
      },
    });

  it('with mfa_serial: a code is needed first, then the cached MFA session serves the next resolution', async () => {
    expect(await chain('process-mfa').needsMfaCode()).toBe(true);
    await chain('process-mfa').credentials();
    expect(sts.calls[0]).toMatchObject({ op: 'GetSessionToken', signedWith: 'AKIAPROCESS000000001', input: { tokenCode: '123456' } });
    expect(await chain('process-mfa').needsMfaCode()).toBe(false);
    clock.advance(10 * 60_000);
    const again = await chain('process-mfa').credentials();
    expect(again.accessKeyId).toBe('ASIASESSION1');
    expect(sts.calls).toHaveLength(1);
    expect(codes).toBe(1);
  });

  it('with mfa_serial but temporary credentials printed: no code is asked for, since none could be used', async () => {
    expect(await chain('process-temporary-mfa').needsMfaCode()).toBe(false);
    await chain('process-temporary-mfa').credentials();
    expect(sts.calls.map((c) => c.op)).toEqual(['AssumeRole']);
    expect(codes).toBe(0);
  });

  it('temporary credentials from it make the first AssumeRole role chaining: capped at 1 h', async () => {
    await chain('process-role').credentials();
    expect(sts.calls.map((c) => [c.op, c.signedWith, (c.input as AssumeRoleInput).durationSeconds])).toEqual([['AssumeRole', 'ASIAPROCESS000000001', 3600]]);
  });
});
