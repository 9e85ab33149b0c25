import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigLoader,
  CredentialChain,
  CredentialKeyring,
  MemoryKeyring,
  SdkStsGateway,
  CredentialCache,
  VaultError,
  parseConfigFile,
  systemClock,
} from '@vault/core';
import { startStsStandIn, type StsFault, type StsStandIn } from '@vault/stand-ins';
import { readmeConfig, MFA_SERIAL, ROLE_A, ROLE_B } from '../support/world.js';

/**
 * STS errors become one line that names the call, the profile and what to do — through
 * the real SDK gateway against the stand-in, so the SDK's own error shapes are what gets mapped.
 */
describe('STS failures as one-line errors (real SDK, STS stand-in)', () => {
  let sts: StsStandIn;
  let user: { accessKeyId: string; secretAccessKey: string };
  let keyring: MemoryKeyring;

  beforeAll(async () => {
    sts = await startStsStandIn();
    user = sts.addUser({ arn: 'arn:aws:iam::111111111111:user/central-user' });
    sts.addMfaDevice(MFA_SERIAL, '123456');
    sts.addRole({ arn: ROLE_A, requireMfa: true });
    sts.addRole({ arn: ROLE_B, requireMfa: true });
  });
  afterAll(async () => {
    await sts.close();
  });
  beforeEach(async () => {
    sts.clearFaults();
    keyring = new MemoryKeyring();
    await new CredentialKeyring(keyring).set('central-account', user);
  });

  function chain(profile: string, code = '123456'): CredentialChain {
    const env = { AWS_ENDPOINT_URL_STS: sts.url };
    const config = new ConfigLoader(parseConfigFile(readmeConfig(), '/test/config'), { env }).load(profile);
    return new CredentialChain(config, {
      credentials: new CredentialKeyring(keyring),
      cache: new CredentialCache(keyring),
      sts: new SdkStsGateway({ maxAttempts: 1, requestTimeoutMs: 2_000 }),
      clock: systemClock,
      env,
      mfa: async () => code,
    });
  }

  async function failure(profile: string, code?: string): Promise<VaultError> {
    const error = await chain(profile, code).credentials().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(VaultError);
    const line = (error as VaultError).toLine();
    expect(line.split('\n')).toHaveLength(1);
    for (const secret of [user.secretAccessKey, ...sts.issuedSecrets()]) expect(line).not.toContain(secret);
    return error as VaultError;
  }

  const cases: Array<[string, StsFault | 'wrong-code' | 'unknown-key', string, RegExp, RegExp]> = [
    ['a wrong MFA code', 'wrong-code', 'MFA_INVALID', /GetSessionToken for profile account-a failed/, /wrong or already used/],
    ['AccessDenied on AssumeRole', { kind: 'accessDenied', actions: ['AssumeRole'] }, 'STS_ACCESS_DENIED', /AssumeRole of arn:aws:iam::222222222222:role\/account-a-assume-role for profile account-a failed: AccessDenied/, /trust policy/],
    ['ExpiredToken', { kind: 'expiredToken', actions: ['AssumeRole'] }, 'STS_EXPIRED_TOKEN', /AssumeRole .* for profile account-a failed: ExpiredToken/, /vault clear account-a/],
    ['Throttling', { kind: 'throttle', actions: ['GetSessionToken'] }, 'STS_THROTTLED', /GetSessionToken for profile account-a failed: Throttling/, /wait a moment/],
    ['an internal error', { kind: 'internal', actions: ['GetSessionToken'] }, 'STS_UNAVAILABLE', /GetSessionToken for profile account-a failed/, /try again shortly/],
    ['a key STS does not know', 'unknown-key', 'STS_INVALID_CLIENT_TOKEN', /GetSessionToken for profile account-a failed: InvalidClientTokenId/, /vault add central-account/],
  ];

  it.each(cases)('%s', async (_name, fault, code, message, hint) => {
    if (fault === 'unknown-key') await new CredentialKeyring(keyring).set('central-account', { accessKeyId: 'AKIAUNKNOWNUNKNOWN22', secretAccessKey: 'x'.repeat(40) });
    else if (fault !== 'wrong-code') sts.injectFaults([fault]);
    const error = await failure('account-a', fault === 'wrong-code' ? '654321' : '123456');
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.hint ?? '').toMatch(hint);
  });

  it('a connection refused names the endpoint and the settings that choose it', async () => {
    const closed = await startStsStandIn();
    const url = closed.url;
    await closed.close();
    const env = { AWS_ENDPOINT_URL_STS: url };
    const config = new ConfigLoader(parseConfigFile(readmeConfig(), '/test/config'), { env }).load('account-a');
    const error = await new CredentialChain(config, {
      credentials: new CredentialKeyring(keyring),
      cache: new CredentialCache(keyring),
      sts: new SdkStsGateway({ maxAttempts: 1, requestTimeoutMs: 2_000 }),
      clock: systemClock,
      env,
      mfa: async () => '123456',
    })
      .credentials()
      .catch((e: unknown) => e as VaultError);
    expect(error.code).toBe('STS_UNAVAILABLE');
    expect(error.message).toContain(url);
    expect(error.hint).toMatch(/AWS_ENDPOINT_URL_STS/);
  });
});
