import { execFile } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { AssumeRoleCommand, GetCallerIdentityCommand, GetSessionTokenCommand, STSClient } from '@aws-sdk/client-sts';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@vault/core';
import { demoFixture, loadFixture, startStsStandIn, type StsStandIn } from './stsStandIn.js';

const REGION = 'ap-northeast-1';
const USER_ARN = 'arn:aws:iam::111111111111:user/central-user';
const MFA = 'arn:aws:iam::111111111111:mfa/central-user';
const ROLE_A = 'arn:aws:iam::222222222222:role/account-a-assume-role';
const ROLE_B = 'arn:aws:iam::333333333333:role/account-b-role';
const ROLE_OPEN = 'arn:aws:iam::444444444444:role/ops/open-role';
const ROLE_LOCKED = 'arn:aws:iam::555555555555:role/locked-role';
const ROLE_EXT = 'arn:aws:iam::666666666666:role/partner-role';
const AWS_CLI = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';
const START = Date.UTC(2026, 0, 1);

interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Captures an SDK rejection so tests can assert on its AWS error name, message and status. */
async function failure(promise: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A Node-crypto hash in the shape the SDK's standalone signer wants (hash, or HMAC when given a key). */
class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

describe('STS stand-in with real clients', () => {
  const clock = new ManualClock(START);
  let sts: StsStandIn;
  let user: Creds;
  const clients: STSClient[] = [];

  const client = (credentials: Creds, extra: Partial<ConstructorParameters<typeof STSClient>[0]> = {}) => {
    const c = new STSClient({ region: REGION, endpoint: sts.url, credentials, maxAttempts: 1, ...extra });
    clients.push(c);
    return c;
  };
  const temp = (c: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string } | undefined): Creds => ({
    accessKeyId: c!.AccessKeyId!,
    secretAccessKey: c!.SecretAccessKey!,
    sessionToken: c!.SessionToken!,
  });
  const mfaSession = async (durationSeconds?: number) =>
    temp((await client(user).send(new GetSessionTokenCommand({ SerialNumber: MFA, TokenCode: '123456', DurationSeconds: durationSeconds }))).Credentials);

  /** A raw request signed by the SDK's signer, to look at the exact bytes the stand-in answers with. */
  async function signedFetch(credentials: Creds, params: Record<string, string>, method: 'GET' | 'POST' = 'POST') {
    const url = new URL(sts.url);
    const body = method === 'POST' ? new URLSearchParams(params).toString() : '';
    const signer = new SignatureV4({ credentials, region: REGION, service: 'sts', sha256: NodeSha256 });
    const signed = await signer.sign({
      method,
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: '/',
      query: method === 'GET' ? params : {},
      headers: { host: url.host, ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' } : {}) },
      body,
    });
    const query = method === 'GET' ? `?${new URLSearchParams(params).toString().replace(/\+/g, '%20')}` : '';
    const headers = { ...signed.headers };
    delete headers.host;
    const res = await fetch(`${sts.url}/${query}`, { method, headers, body: method === 'POST' ? body : undefined });
    return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
  }

  beforeAll(async () => {
    sts = await startStsStandIn({ clock });
    user = sts.addUser({ arn: USER_ARN });
    sts.addMfaDevice(MFA, '123456');
    sts.addRole({ arn: ROLE_A, requireMfa: true });
    sts.addRole({ arn: ROLE_B, requireMfa: true });
    sts.addRole({ arn: ROLE_OPEN, maxSessionDurationSeconds: 43200 });
    sts.addRole({ arn: ROLE_LOCKED, trustedPrincipals: ['arn:aws:iam::999999999999:root'] });
    sts.addRole({ arn: ROLE_EXT, externalId: 'optional-external-id', trustedPrincipals: ['111111111111'] });
  });

  afterAll(async () => {
    for (const c of clients) c.destroy();
    await sts.close();
  });

  beforeEach(() => {
    clock.set(START);
    sts.resetCalls();
    sts.clearFaults();
    sts.addMfaDevice(MFA, '123456');
  });

  it('issues realistic long-term keys', () => {
    expect(user.accessKeyId).toMatch(/^AKIA[A-Z2-7]{16}$/);
    expect(user.secretAccessKey).toMatch(/^[A-Za-z0-9+/]{40}$/);
    expect(sts.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  describe('@aws-sdk/client-sts', () => {
    it('GetSessionToken with MFA: ASIA key, session token, Expiration = clock + 12 h by default', async () => {
      const out = await client(user).send(new GetSessionTokenCommand({ SerialNumber: MFA, TokenCode: '123456' }));
      expect(out.Credentials?.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
      expect(out.Credentials?.SecretAccessKey).toHaveLength(40);
      expect(out.Credentials?.SessionToken?.length).toBeGreaterThan(300);
      expect(out.Credentials?.Expiration?.getTime()).toBe(START + 43200 * 1000);
      expect(sts.count('GetSessionToken')).toBe(1);
      expect(sts.calls).toEqual([
        expect.objectContaining({ action: 'GetSessionToken', accessKeyId: user.accessKeyId, serialNumber: MFA, tokenCodeSent: true, ok: true, status: 200 }),
      ]);
      expect(sts.describeKey(out.Credentials!.AccessKeyId!)).toMatchObject({ kind: 'session', arn: USER_ARN, mfaAuthenticated: true });
      const recorded = JSON.stringify(sts.calls);
      for (const secret of [user.secretAccessKey, out.Credentials!.SecretAccessKey!, out.Credentials!.SessionToken!, '123456']) {
        expect(recorded).not.toContain(secret);
      }
      expect(sts.issuedSecrets()).toEqual(expect.arrayContaining([user.secretAccessKey, out.Credentials!.SecretAccessKey, out.Credentials!.SessionToken]));
    });

    it('GetCallerIdentity names the user, and for an MFA session still the user', async () => {
      const me = await client(user).send(new GetCallerIdentityCommand({}));
      expect(me).toMatchObject({ Arn: USER_ARN, Account: '111111111111', UserId: expect.stringMatching(/^AIDA[A-Z0-9]{17}$/) });
      const session = await mfaSession();
      expect((await client(session).send(new GetCallerIdentityCommand({}))).Arn).toBe(USER_ARN);
    });

    it('AssumeRole with an MFA session: assumed-role ARN, role id, 1 h default, GetCallerIdentity as the role', async () => {
      const session = await mfaSession();
      const out = await client(session).send(new AssumeRoleCommand({ RoleArn: ROLE_A, RoleSessionName: 'vault-session' }));
      expect(out.AssumedRoleUser?.Arn).toBe('arn:aws:sts::222222222222:assumed-role/account-a-assume-role/vault-session');
      expect(out.AssumedRoleUser?.AssumedRoleId).toMatch(/^AROA[A-Z0-9]{17}:vault-session$/);
      expect(out.Credentials?.Expiration?.getTime()).toBe(START + 3600 * 1000);
      const me = await client(temp(out.Credentials)).send(new GetCallerIdentityCommand({}));
      expect(me).toEqual(
        expect.objectContaining({
          Arn: 'arn:aws:sts::222222222222:assumed-role/account-a-assume-role/vault-session',
          Account: '222222222222',
          UserId: out.AssumedRoleUser?.AssumedRoleId,
        }),
      );
      expect(sts.count('AssumeRole')).toBe(1);
      expect(sts.calls.find((c) => c.action === 'AssumeRole')).toMatchObject({ accessKeyId: session.accessKeyId, roleArn: ROLE_A, roleSessionName: 'vault-session' });
    });

    it('an MFA role refuses the long-term key and a session without MFA, accepts a code in the request', async () => {
      const denied = await failure(client(user).send(new AssumeRoleCommand({ RoleArn: ROLE_A, RoleSessionName: 's1' })));
      expect(denied).toEqual({
        name: 'AccessDenied',
        status: 403,
        message: `User: ${USER_ARN} is not authorized to perform: sts:AssumeRole on resource: ${ROLE_A}`,
      });
      const noMfa = temp((await client(user).send(new GetSessionTokenCommand({}))).Credentials);
      expect((await failure(client(noMfa).send(new AssumeRoleCommand({ RoleArn: ROLE_A, RoleSessionName: 's2' })))).name).toBe('AccessDenied');
      const direct = await client(user).send(new AssumeRoleCommand({ RoleArn: ROLE_A, RoleSessionName: 's3', SerialNumber: MFA, TokenCode: '123456' }));
      expect(direct.AssumedRoleUser?.Arn).toMatch(/assumed-role\/account-a-assume-role\/s3$/);
      // A role without the MFA condition takes the plain key.
      const open = await client(user).send(new AssumeRoleCommand({ RoleArn: ROLE_OPEN, RoleSessionName: 's4', DurationSeconds: 43200 }));
      expect(open.AssumedRoleUser?.Arn).toBe('arn:aws:sts::444444444444:assumed-role/open-role/s4');
      expect(sts.count('AssumeRole')).toBe(2);
      expect(sts.count('AssumeRole', false)).toBe(4);
      expect(sts.calls.filter((c) => !c.ok).map((c) => c.errorCode)).toEqual(['AccessDenied', 'AccessDenied']);
    });

    it('role chaining: over 1 h is a ValidationError; within it the MFA of the chain carries on', async () => {
      const session = await mfaSession();
      const roleA = temp((await client(session).send(new AssumeRoleCommand({ RoleArn: ROLE_A, RoleSessionName: 'hop1' }))).Credentials);
      expect(await failure(client(roleA).send(new AssumeRoleCommand({ RoleArn: ROLE_B, RoleSessionName: 'hop2', DurationSeconds: 7200 })))).toEqual({
        name: 'ValidationError',
        status: 400,
        message: 'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
      });
      const roleB = await client(roleA).send(new AssumeRoleCommand({ RoleArn: ROLE_B, RoleSessionName: 'hop2', DurationSeconds: 3600 }));
      expect(roleB.AssumedRoleUser?.Arn).toBe('arn:aws:sts::333333333333:assumed-role/account-b-role/hop2');
      expect(sts.describeKey(roleB.Credentials!.AccessKeyId!)).toMatchObject({ kind: 'role', chained: true, mfaAuthenticated: true });
      // …but a chain that started without MFA cannot reach an MFA role.
      const open = temp((await client(user).send(new AssumeRoleCommand({ RoleArn: ROLE_OPEN, RoleSessionName: 'plain' }))).Credentials);
      const denied = await failure(client(open).send(new AssumeRoleCommand({ RoleArn: ROLE_B, RoleSessionName: 'hop2' })));
      expect(denied.message).toBe(`User: arn:aws:sts::444444444444:assumed-role/open-role/plain is not authorized to perform: sts:AssumeRole on resource: ${ROLE_B}`);
    });

    it('a wrong MFA code is AccessDenied with AWS wording; tests can change the valid code', async () => {
      const wrong = await failure(client(user).send(new GetSessionTokenCommand({ SerialNumber: MFA, TokenCode: '000000' })));
      expect(wrong).toEqual({ name: 'AccessDenied', status: 403, message: 'MultiFactorAuthentication failed with invalid MFA one time pass code. ' });
      sts.addMfaDevice(MFA, '654321');
      expect((await failure(client(user).send(new GetSessionTokenCommand({ SerialNumber: MFA, TokenCode: '123456' })))).name).toBe('AccessDenied');
      await client(user).send(new GetSessionTokenCommand({ SerialNumber: MFA, TokenCode: '654321' }));
      const unknown = await failure(client(user).send(new GetSessionTokenCommand({ SerialNumber: 'arn:aws:iam::111111111111:mfa/nobody', TokenCode: '654321' })));
      expect(unknown.message).toMatch(/^MultiFactorAuthentication failed, unable to validate MFA code/);
      expect(sts.count('GetSessionToken')).toBe(1);
      expect(sts.calls.map((c) => c.errorCode ?? 'ok')).toEqual(['AccessDenied', 'AccessDenied', 'ok', 'AccessDenied']);
    });

    it('a wrong secret is SignatureDoesNotMatch; an unknown key is InvalidClientTokenId', async () => {
      const badSecret = await failure(client({ ...user, secretAccessKey: 'x'.repeat(40) }).send(new GetCallerIdentityCommand({})));
      expect(badSecret).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
      expect(badSecret.message).toMatch(/^The request signature we calculated does not match/);
      const unknown = await failure(client({ accessKeyId: 'AKIAUNKNOWNUNKNOWN22', secretAccessKey: user.secretAccessKey }).send(new GetCallerIdentityCommand({})));
      expect(unknown).toEqual({ name: 'InvalidClientTokenId', status: 403, message: 'The security token included in the request is invalid.' });
      expect(sts.calls.map((c) => [c.accessKeyId, c.errorCode])).toEqual([
        [user.accessKeyId, 'SignatureDoesNotMatch'],
        ['AKIAUNKNOWNUNKNOWN22', 'InvalidClientTokenId'],
      ]);
    });

    it('temporary credentials expire by the injected clock and need their own session token', async () => {
      const session = await mfaSession(900);
      await client(session).send(new GetCallerIdentityCommand({}));
      const noToken = await failure(client({ accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey }).send(new GetCallerIdentityCommand({})));
      expect(noToken).toMatchObject({ name: 'InvalidClientTokenId', status: 403 });
      const otherToken = await failure(client({ ...session, sessionToken: `${session.sessionToken!.slice(0, -4)}AAAA` }).send(new GetCallerIdentityCommand({})));
      expect(otherToken.name).toBe('InvalidClientTokenId');
      clock.advance(900 * 1000 - 1);
      await client(session).send(new GetCallerIdentityCommand({}));
      clock.advance(1);
      expect(await failure(client(session).send(new GetCallerIdentityCommand({})))).toEqual({
        name: 'ExpiredToken',
        status: 400,
        message: 'The security token included in the request is expired',
      });
    });

    it('GetSessionToken refuses session credentials; parameters are validated like AWS', async () => {
      const session = await mfaSession();
      expect(await failure(client(session).send(new GetSessionTokenCommand({})))).toEqual({
        name: 'AccessDenied',
        status: 403,
        message: 'Cannot call GetSessionToken with session credentials',
      });
      const short = await failure(client(user).send(new GetSessionTokenCommand({ DurationSeconds: 600 })));
      expect(short).toMatchObject({ name: 'ValidationError', status: 400 });
      expect(short.message).toBe("1 validation error detected: Value '600' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900");
      const name = await failure(client(session).send(new AssumeRoleCommand({ RoleArn: ROLE_A, RoleSessionName: 'bad name!' })));
      expect(name.message).toBe(
        "1 validation error detected: Value 'bad name!' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
      );
      const two = await failure(client(session).send(new AssumeRoleCommand({ RoleArn: ROLE_A, RoleSessionName: 'x', DurationSeconds: 60 })));
      expect(two.message).toMatch(/^2 validation errors detected: .*roleSessionName.*length greater than or equal to 2; .*durationSeconds/);
      const overMax = await failure(client(session).send(new AssumeRoleCommand({ RoleArn: ROLE_A, RoleSessionName: 'ok', DurationSeconds: 7200 })));
      expect(overMax).toMatchObject({ name: 'ValidationError', message: 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.' });
    });

    it('trust policy principals and ExternalId are enforced; unknown roles are AccessDenied; echoed text is XML-escaped', async () => {
      expect((await failure(client(user).send(new AssumeRoleCommand({ RoleArn: ROLE_LOCKED, RoleSessionName: 'ss' })))).name).toBe('AccessDenied');
      expect((await failure(client(user).send(new AssumeRoleCommand({ RoleArn: ROLE_EXT, RoleSessionName: 'ss' })))).name).toBe('AccessDenied');
      expect((await failure(client(user).send(new AssumeRoleCommand({ RoleArn: ROLE_EXT, RoleSessionName: 'ss', ExternalId: 'nope-nope' })))).name).toBe('AccessDenied');
      const ok = await client(user).send(new AssumeRoleCommand({ RoleArn: ROLE_EXT, RoleSessionName: 'ss', ExternalId: 'optional-external-id' }));
      expect(ok.AssumedRoleUser?.Arn).toBe('arn:aws:sts::666666666666:assumed-role/partner-role/ss');
      const odd = 'arn:aws:iam::222222222222:role/<no&such>"role\'';
      expect(await failure(client(user).send(new AssumeRoleCommand({ RoleArn: odd, RoleSessionName: 'ss' })))).toMatchObject({
        name: 'AccessDenied',
        message: `User: ${USER_ARN} is not authorized to perform: sts:AssumeRole on resource: ${odd}`,
      });
    });

    it('session tags, transitive tag keys and SourceIdentity are returned, recorded and carried down a chain', async () => {
      const session = await mfaSession();
      const first = await client(session).send(
        new AssumeRoleCommand({
          RoleArn: ROLE_A,
          RoleSessionName: 'tagged',
          Tags: [
            { Key: 'team', Value: 'platform ops' },
            { Key: 'cost-center', Value: '42' },
          ],
          TransitiveTagKeys: ['team'],
          SourceIdentity: 'alice@example.com',
        }),
      );
      expect(first.SourceIdentity).toBe('alice@example.com');
      expect(first.PackedPolicySize).toBeGreaterThan(0);
      expect(sts.calls.at(-1)).toMatchObject({
        tags: [
          { key: 'team', value: 'platform ops' },
          { key: 'cost-center', value: '42' },
        ],
        transitiveTagKeys: ['team'],
        sourceIdentity: 'alice@example.com',
      });
      const second = await client(temp(first.Credentials)).send(new AssumeRoleCommand({ RoleArn: ROLE_B, RoleSessionName: 'next' }));
      expect(second.SourceIdentity).toBe('alice@example.com');
      expect(sts.describeKey(second.Credentials!.AccessKeyId!)).toMatchObject({
        tags: [{ key: 'team', value: 'platform ops' }],
        transitiveTagKeys: ['team'],
        sourceIdentity: 'alice@example.com',
      });
      const dup = await failure(
        client(session).send(new AssumeRoleCommand({ RoleArn: ROLE_A, RoleSessionName: 'dup', Tags: [{ Key: 'a', Value: '1' }, { Key: 'A', Value: '2' }] })),
      );
      expect(dup.message).toBe('Duplicate tag keys found. Please note that Tag keys are case insensitive.');
    });

    it('answers exactly AWS XML shapes, over POST and GET, with text/xml', async () => {
      const session = await mfaSession();
      const assumed = await signedFetch(session, {
        Action: 'AssumeRole',
        Version: '2011-06-15',
        RoleArn: ROLE_A,
        RoleSessionName: 'xml-check',
        SourceIdentity: 'alice',
      });
      expect(assumed.status).toBe(200);
      expect(assumed.contentType).toBe('text/xml');
      const shape = new RegExp(
        [
          '^<AssumeRoleResponse xmlns="https://sts\\.amazonaws\\.com/doc/2011-06-15/">',
          '<AssumeRoleResult>',
          '<SourceIdentity>alice</SourceIdentity>',
          '<AssumedRoleUser><AssumedRoleId>AROA[A-Z0-9]{17}:xml-check</AssumedRoleId>',
          '<Arn>arn:aws:sts::222222222222:assumed-role/account-a-assume-role/xml-check</Arn></AssumedRoleUser>',
          '<Credentials><AccessKeyId>ASIA[A-Z2-7]{16}</AccessKeyId><SecretAccessKey>[^<]{40}</SecretAccessKey>',
          '<SessionToken>[^<]+</SessionToken><Expiration>2026-01-01T01:00:00Z</Expiration></Credentials>',
          '</AssumeRoleResult>',
          '<ResponseMetadata><RequestId>[0-9a-f-]{36}</RequestId></ResponseMetadata>',
          '</AssumeRoleResponse>$',
        ].join(''),
      );
      expect(assumed.text.replace(/>\s+</g, '><').trim()).toMatch(shape);

      const viaGet = await signedFetch(user, { Action: 'GetCallerIdentity', Version: '2011-06-15' }, 'GET');
      expect(viaGet.status).toBe(200);
      expect(viaGet.text.replace(/>\s+</g, '><').trim()).toMatch(
        /^<GetCallerIdentityResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><GetCallerIdentityResult><Arn>arn:aws:iam::111111111111:user\/central-user<\/Arn><UserId>AIDA[A-Z0-9]{17}<\/UserId><Account>111111111111<\/Account><\/GetCallerIdentityResult><ResponseMetadata><RequestId>[0-9a-f-]{36}<\/RequestId><\/ResponseMetadata><\/GetCallerIdentityResponse>$/,
      );

      const unsigned = await fetch(sts.url, { method: 'POST', body: 'Action=GetCallerIdentity&Version=2011-06-15', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(unsigned.status).toBe(403);
      expect(unsigned.headers.get('content-type')).toBe('text/xml');
      expect((await unsigned.text()).replace(/>\s+</g, '><').trim()).toMatch(
        /^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><Error><Type>Sender<\/Type><Code>MissingAuthenticationToken<\/Code><Message>Request is missing Authentication Token<\/Message><\/Error><RequestId>[0-9a-f-]{36}<\/RequestId><\/ErrorResponse>$/,
      );

      const badAction = await signedFetch(user, { Action: 'DecodeAuthorizationMessage', Version: '2011-06-15' });
      expect(badAction.status).toBe(400);
      expect(badAction.text).toContain('<Code>InvalidAction</Code>');
      const noVersion = await signedFetch(user, { Action: 'GetCallerIdentity' });
      expect(noVersion.text).toContain('Could not find operation GetCallerIdentity for version NO_VERSION_SPECIFIED');
    });
  });

  describe('AWS CLI v2 (/usr/bin/aws) and botocore', () => {
    const cliEnv = (creds: Creds): NodeJS.ProcessEnv => ({
      PATH: '/usr/bin:/bin',
      HOME: process.env.HOME,
      AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
      ...(creds.sessionToken ? { AWS_SESSION_TOKEN: creds.sessionToken } : {}),
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_DEFAULT_REGION: REGION,
      AWS_REGION: REGION,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    });

    it('aws sts get-caller-identity and sts assume-role (with MFA), then get-caller-identity as the role', async () => {
      const [who, assumed, badKey] = await Promise.all([
        run(AWS_CLI, ['sts', 'get-caller-identity', '--endpoint-url', sts.url, '--output', 'json'], cliEnv(user)),
        run(
          AWS_CLI,
          [
            'sts', 'assume-role', '--role-arn', ROLE_A, '--role-session-name', 'cli-session', '--serial-number', MFA, '--token-code', '123456',
            '--duration-seconds', '900', '--endpoint-url', sts.url, '--output', 'json',
          ],
          cliEnv(user),
        ),
        run(AWS_CLI, ['sts', 'get-caller-identity', '--endpoint-url', sts.url, '--output', 'json'], cliEnv({ ...user, secretAccessKey: 'y'.repeat(40) })),
      ]);
      expect(who.stderr).toBe('');
      expect(JSON.parse(who.stdout)).toMatchObject({ Arn: USER_ARN, Account: '111111111111' });
      expect(assumed.stderr).toBe('');
      const out = JSON.parse(assumed.stdout);
      expect(out.AssumedRoleUser.Arn).toBe('arn:aws:sts::222222222222:assumed-role/account-a-assume-role/cli-session');
      expect(out.Credentials.Expiration).toMatch(/^2026-01-01T00:15:00(\+00:00|Z)$/);
      expect(badKey.code).not.toBe(0);
      expect(badKey.stderr).toMatch(/SignatureDoesNotMatch/);

      const asRole = await run(
        AWS_CLI,
        ['sts', 'get-caller-identity', '--endpoint-url', sts.url, '--output', 'json'],
        cliEnv({ accessKeyId: out.Credentials.AccessKeyId, secretAccessKey: out.Credentials.SecretAccessKey, sessionToken: out.Credentials.SessionToken }),
      );
      expect(asRole.stderr).toBe('');
      expect(JSON.parse(asRole.stdout).Arn).toBe('arn:aws:sts::222222222222:assumed-role/account-a-assume-role/cli-session');
      expect(sts.count('GetCallerIdentity')).toBe(2);
      expect(sts.count('GetCallerIdentity', false)).toBe(3);
      expect(sts.count('AssumeRole')).toBe(1);
      expect(sts.calls.find((c) => c.action === 'AssumeRole')).toMatchObject({ serialNumber: MFA, durationSeconds: 900, userAgent: expect.stringMatching(/^aws-cli\/2\./) });
    });

    it('botocore: GetSessionToken with MFA then AssumeRole with tags and SourceIdentity', async () => {
      const script = [
        'import json, sys, botocore.session',
        's = botocore.session.Session()',
        "c = s.create_client('sts', endpoint_url=sys.argv[1], region_name='ap-northeast-1', aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])",
        "t = c.get_session_token(SerialNumber=sys.argv[4], TokenCode='123456')['Credentials']",
        "r = s.create_client('sts', endpoint_url=sys.argv[1], region_name='ap-northeast-1', aws_access_key_id=t['AccessKeyId'], aws_secret_access_key=t['SecretAccessKey'], aws_session_token=t['SessionToken'])",
        "o = r.assume_role(RoleArn=sys.argv[5], RoleSessionName='boto', Tags=[{'Key': 'team', 'Value': 'a b+c'}], TransitiveTagKeys=['team'], SourceIdentity='bob')",
        "print(json.dumps({'arn': o['AssumedRoleUser']['Arn'], 'source': o['SourceIdentity'], 'expires': o['Credentials']['Expiration'].isoformat()}))",
      ].join('\n');
      const result = await run(PYTHON, ['-c', script, sts.url, user.accessKeyId, user.secretAccessKey, MFA, ROLE_B], {
        PATH: '/usr/bin:/bin',
        HOME: process.env.HOME,
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        AWS_EC2_METADATA_DISABLED: 'true',
      });
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout)).toEqual({
        arn: 'arn:aws:sts::333333333333:assumed-role/account-b-role/boto',
        source: 'bob',
        expires: '2026-01-01T01:00:00+00:00',
      });
      expect(sts.calls.map((c) => [c.action, c.ok])).toEqual([
        ['GetSessionToken', true],
        ['AssumeRole', true],
      ]);
      expect(sts.calls[1]).toMatchObject({ tags: [{ key: 'team', value: 'a b+c' }], userAgent: expect.stringMatching(/Botocore/) });
    });
  });

  describe('fault injection', () => {
    afterEach(() => sts.clearFaults());

    it('throttle, internal, expiredToken and accessDenied answer the next request with AWS errors, then it recovers', async () => {
      sts.injectFaults([{ kind: 'throttle' }, { kind: 'internal' }, { kind: 'expiredToken' }, { kind: 'accessDenied' }]);
      const c = client(user);
      expect(await failure(c.send(new GetCallerIdentityCommand({})))).toEqual({ name: 'Throttling', status: 400, message: 'Rate exceeded' });
      expect(await failure(c.send(new GetCallerIdentityCommand({})))).toMatchObject({ name: 'InternalFailure', status: 500 });
      expect(await failure(c.send(new GetCallerIdentityCommand({})))).toMatchObject({ name: 'ExpiredToken', status: 400 });
      expect(await failure(c.send(new GetCallerIdentityCommand({})))).toMatchObject({
        name: 'AccessDenied',
        status: 403,
        message: `User: ${USER_ARN} is not authorized to perform: sts:GetCallerIdentity`,
      });
      expect((await c.send(new GetCallerIdentityCommand({}))).Arn).toBe(USER_ARN);
      expect(sts.calls.map((c) => c.fault ?? c.errorCode ?? 'ok')).toEqual(['throttle', 'internal', 'expiredToken', 'accessDenied', 'ok']);
      expect(sts.count('GetCallerIdentity')).toBe(1);
      expect(sts.count('GetCallerIdentity', false)).toBe(5);
    });

    it("the SDK's own retry rides over a 500", async () => {
      sts.injectFaults([{ kind: 'internal' }]);
      const out = await client(user, { maxAttempts: 2 }).send(new GetCallerIdentityCommand({}));
      expect(out.Arn).toBe(USER_ARN);
      expect(sts.calls.map((c) => c.errorCode ?? 'ok')).toEqual(['InternalFailure', 'ok']);
    });

    it('times and actions filters pick which requests fail', async () => {
      sts.injectFaults([{ kind: 'throttle', times: 2, actions: ['GetSessionToken'] }]);
      const c = client(user);
      await c.send(new GetCallerIdentityCommand({}));
      expect((await failure(c.send(new GetSessionTokenCommand({})))).name).toBe('Throttling');
      expect((await failure(c.send(new GetSessionTokenCommand({})))).name).toBe('Throttling');
      await c.send(new GetSessionTokenCommand({}));
      expect(sts.count('GetSessionToken', false)).toBe(3);
      expect(sts.count('GetSessionToken')).toBe(1);
    });

    it('reset destroys the socket; malformed answers 200 with broken XML; delay holds the answer', async () => {
      sts.injectFaults([{ kind: 'reset' }, { kind: 'malformed' }, { kind: 'delay', ms: 150 }, { kind: 'delay', ms: 500 }]);
      const c = client(user);
      const reset = await failure(c.send(new GetCallerIdentityCommand({})));
      expect(reset.status).toBeUndefined();
      expect(reset.message).toMatch(/socket hang up|ECONNRESET/);
      await expect(c.send(new GetCallerIdentityCommand({}))).rejects.toThrow();
      // The `delay` fault's own contract: the answer is held at least `ms`. A lower bound on a
      // timer cannot flake (timers never fire early; 10 ms slack for clock granularity); how much
      // longer it took is a figure.
      const started = performance.now();
      expect((await c.send(new GetCallerIdentityCommand({}))).Arn).toBe(USER_ARN);
      const heldMs = performance.now() - started;
      console.log(`FIGURE stsStandIn delay=150ms answeredAfter=${heldMs.toFixed(1)}ms`);
      expect(heldMs).toBeGreaterThanOrEqual(140);
      // This @smithy/node-http-handler only warns on requestTimeout unless throwOnRequestTimeout is set.
      const impatient = client(user, { requestHandler: { requestTimeout: 100, throwOnRequestTimeout: true } });
      expect((await failure(impatient.send(new GetCallerIdentityCommand({})))).name).toMatch(/TimeoutError/);
      expect(sts.calls.slice(0, 3).map((c) => [c.fault, c.errorCode ?? 'ok'])).toEqual([
        ['reset', 'ConnectionReset'],
        ['malformed', 'MalformedResponse'],
        ['delay', 'ok'],
      ]);
    });

    it('a fault mode is persistent until cleared ("STS is down")', async () => {
      sts.setFaultMode((request) => (request.action === 'AssumeRole' ? { kind: 'internal' } : undefined));
      const c = client(user);
      for (let i = 0; i < 3; i += 1) expect((await failure(c.send(new AssumeRoleCommand({ RoleArn: ROLE_OPEN, RoleSessionName: 'down' })))).status).toBe(500);
      await c.send(new GetCallerIdentityCommand({}));
      sts.setFaultMode(undefined);
      await c.send(new AssumeRoleCommand({ RoleArn: ROLE_OPEN, RoleSessionName: 'up' }));
      expect(sts.count('AssumeRole', false)).toBe(4);
      expect(sts.count('AssumeRole')).toBe(1);
    });

    it('the admin endpoints list calls, queue faults and reset for other processes', async () => {
      await client(user).send(new GetCallerIdentityCommand({}));
      const calls = (await (await fetch(`${sts.url}/__standin/calls`)).json()) as Array<{ action: string; ok: boolean }>;
      expect(calls).toEqual([expect.objectContaining({ action: 'GetCallerIdentity', ok: true, accessKeyId: user.accessKeyId })]);
      const queued = await fetch(`${sts.url}/__standin/faults`, { method: 'POST', body: JSON.stringify([{ kind: 'throttle' }]) });
      expect(queued.status).toBe(200);
      const bogus = await fetch(`${sts.url}/__standin/faults`, { method: 'POST', body: JSON.stringify([{ kind: 'meteor' }]) });
      expect(bogus.status).toBe(400);
      expect((await failure(client(user).send(new GetCallerIdentityCommand({})))).name).toBe('Throttling');
      expect((await fetch(`${sts.url}/__standin/reset`, { method: 'POST' })).status).toBe(200);
      expect(sts.calls).toEqual([]);
      expect(await (await fetch(`${sts.url}/__standin/calls`)).json()).toEqual([]);
    });
  });
});

describe('STS stand-in options and fixtures', () => {
  it('checkRequestTime rejects signatures 15 min away from the clock; the JS SDK corrects its clock from the Date header', async () => {
    const clock = new ManualClock(START);
    const sts = await startStsStandIn({ clock, checkRequestTime: true });
    const user = sts.addUser({ arn: USER_ARN });
    const made: STSClient[] = [];
    // A fresh client each time: an SDK client keeps the clock offset it learnt from an error's Date header.
    const fresh = (maxAttempts = 1) => {
      const c = new STSClient({ region: REGION, endpoint: sts.url, credentials: user, maxAttempts });
      made.push(c);
      return c;
    };
    try {
      // The wall clock the SDK signs with is far ahead of the stand-in's ManualClock.
      const ahead = await failure(fresh().send(new GetCallerIdentityCommand({})));
      expect(ahead).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
      expect(ahead.message).toMatch(/^Signature not yet current: \d{8}T\d{6}Z is still later than 20260101T001500Z \(20260101T000000Z \+ 15 min\.\)$/);
      clock.set(Date.now() + 3_600_000);
      const behind = await failure(fresh().send(new GetCallerIdentityCommand({})));
      expect(behind.message).toMatch(/^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$/);
      clock.set(Date.now());
      expect((await fresh().send(new GetCallerIdentityCommand({}))).Arn).toBe(USER_ARN);
      // Like AWS, the stand-in's Date header tells its time: the SDK adopts the offset and retries.
      clock.set(START);
      sts.resetCalls();
      expect((await fresh(3).send(new GetCallerIdentityCommand({}))).Arn).toBe(USER_ARN);
      expect(sts.calls.map((c) => c.errorCode ?? 'ok')).toEqual(['SignatureDoesNotMatch', 'ok']);
    } finally {
      for (const c of made) c.destroy();
      await sts.close();
    }
  });

  it('loadFixture with demoFixture sets up the README example: the documented key, MFA, two MFA roles', async () => {
    const sts = await startStsStandIn();
    try {
      const keys = loadFixture(sts, demoFixture);
      expect(keys).toEqual([{ arn: USER_ARN, accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }]);
      const c = new STSClient({ region: REGION, endpoint: sts.url, credentials: keys[0]!, maxAttempts: 1 });
      try {
        expect((await failure(c.send(new AssumeRoleCommand({ RoleArn: ROLE_B, RoleSessionName: 'demo' })))).name).toBe('AccessDenied');
        const out = await c.send(new AssumeRoleCommand({ RoleArn: ROLE_B, RoleSessionName: 'demo', SerialNumber: MFA, TokenCode: '123456' }));
        expect(out.AssumedRoleUser?.Arn).toBe('arn:aws:sts::333333333333:assumed-role/account-b-role/demo');
      } finally {
        c.destroy();
      }
    } finally {
      await sts.close();
    }
  });

  it('a second key for the same user works alongside the first; a removed key is InvalidClientTokenId', async () => {
    const sts = await startStsStandIn();
    try {
      const first = sts.addUser({ arn: USER_ARN });
      const second = sts.addUser({ arn: USER_ARN });
      for (const key of [first, second]) {
        const c = new STSClient({ region: REGION, endpoint: sts.url, credentials: key, maxAttempts: 1 });
        expect((await c.send(new GetCallerIdentityCommand({}))).Arn).toBe(USER_ARN);
        c.destroy();
      }
      expect(sts.removeKey(first.accessKeyId)).toBe(true);
      const c = new STSClient({ region: REGION, endpoint: sts.url, credentials: first, maxAttempts: 1 });
      expect((await failure(c.send(new GetCallerIdentityCommand({})))).name).toBe('InvalidClientTokenId');
      c.destroy();
    } finally {
      await sts.close();
    }
  });
});
