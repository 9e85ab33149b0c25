import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigLoader,
  CredentialChain,
  CredentialKeyring,
  ManualClock,
  MemoryKeyring,
  SdkStsGateway,
  CredentialCache,
  SsoTokenKeyring,
  VaultError,
  parseConfigFile,
  parseCacheKey,
  type SsoSignInPrompt,
} from '@vault/core';
import {
  startSsoOidcStandIn,
  startSsoPortalStandIn,
  startStsStandIn,
  type SsoOidcStandIn,
  type SsoPortalStandIn,
  type StsStandIn,
} from '@vault/stand-ins';

/**
 * The IAM Identity Center source inside the real credential chain, with the real SDK clients
 * against the OIDC, portal and STS stand-ins and one injected clock: the waits between polls move
 * the clock instead of sleeping.
 */
const START_URL = 'https://my-org.awsapps.com/start';
const LEGACY_URL = 'https://legacy.awsapps.com/start';
const DEPLOY_ROLE = 'arn:aws:iam::333333333333:role/deploy';
const CONFIG = `
[sso-session my-sso]
sso_start_url = ${START_URL}
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile dev]
sso_session = my-sso
sso_account_id = 111111111111
sso_role_name = Developer
region = eu-west-1

[profile ops]
sso_session = my-sso
sso_account_id = 222222222222
sso_role_name = Operator

[profile deploy]
source_profile = dev
role_arn = ${DEPLOY_ROLE}

[profile legacy]
sso_start_url = ${LEGACY_URL}
sso_region = eu-west-1
sso_account_id = 111111111111
sso_role_name = Developer
`;

interface Rig {
  clock: ManualClock;
  sts: StsStandIn;
  oidc: SsoOidcStandIn;
  portal: SsoPortalStandIn;
  keyring: MemoryKeyring;
  prompts: SsoSignInPrompt[];
  sleeps: number[];
  /** Called at each wait between polls, with its number (1-based); approves the code by default. */
  onSleep: (n: number) => void;
  chain: (profile: string, options?: { signIn?: boolean; roleCache?: boolean }) => CredentialChain;
}

let rig: Rig;

beforeEach(async () => {
  // The SDK signs with the wall clock; the STS stand-in checks no request time.
  const clock = new ManualClock(Date.now());
  const sts = await startStsStandIn({ clock });
  const oidc = await startSsoOidcStandIn({ clock, deviceCodeSeconds: 600, intervalSeconds: 1 });
  const portal = await startSsoPortalStandIn({ oidc, sts });
  portal.addAssignment('111111111111', 'Developer');
  portal.addAssignment('222222222222', 'Operator');
  sts.addRole({ arn: DEPLOY_ROLE });
  const keyring = new MemoryKeyring();
  const env = { AWS_ENDPOINT_URL_SSO_OIDC: oidc.url, AWS_ENDPOINT_URL_SSO: portal.url, AWS_ENDPOINT_URL_STS: sts.url };
  const loader = new ConfigLoader(parseConfigFile(CONFIG, '/home/u/.aws/config'), { env });
  const gateway = new SdkStsGateway();
  const r: Rig = {
    clock,
    sts,
    oidc,
    portal,
    keyring,
    prompts: [],
    sleeps: [],
    onSleep: () => {
      const last = r.prompts.at(-1);
      if (last) oidc.approve(last.userCode);
    },
    chain: (profile, options = {}) =>
      new CredentialChain(
        loader.load(profile),
        {
          credentials: new CredentialKeyring(keyring),
          cache: new CredentialCache(keyring),
          sts: gateway,
          clock,
          env,
          ssoSignIn: options.signIn === false ? undefined : (prompt) => void r.prompts.push(prompt),
          ssoSleep: async (ms) => {
            r.sleeps.push(ms);
            clock.advance(ms);
            r.onSleep(r.sleeps.length);
          },
        },
        { roleCache: options.roleCache },
      ),
  };
  rig = r;
});

afterEach(async () => {
  await Promise.all([rig.portal.close(), rig.oidc.close(), rig.sts.close()]);
});

async function failure(promise: Promise<unknown>): Promise<VaultError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VaultError) return error;
    throw error;
  }
  throw new Error('expected a VaultError');
}

describe('IAM Identity Center in the credential chain', () => {
  it('signs in once for two accounts under one start URL and caches the token in the keyring as oidc:<start URL>', async () => {
    const dev = await rig.chain('dev').credentials();
    const ops = await rig.chain('ops').credentials();
    expect(rig.prompts).toHaveLength(1);
    expect(rig.prompts[0]).toMatchObject({ profile: 'dev', startUrl: START_URL, verificationUriComplete: `${rig.oidc.url}/device?user_code=${rig.prompts[0]!.userCode}` });
    expect(rig.oidc.count('StartDeviceAuthorization')).toBe(1);
    expect(rig.portal.calls.map((c) => `${c.accountId}/${c.roleName}`)).toEqual(['111111111111/Developer', '222222222222/Operator']);
    expect(rig.sts.describeKey(dev.accessKeyId)?.arn).toMatch(/^arn:aws:sts::111111111111:assumed-role\/AWSReservedSSO_Developer_/);
    expect(rig.sts.describeKey(ops.accessKeyId)?.account).toBe('222222222222');
    const keys = await rig.keyring.keys();
    expect(keys).toContain(`oidc:${START_URL}`);
    expect(keys.map(parseCacheKey).filter((k) => k?.type === 'sso.GetRoleCredentials').map((k) => k!.profile).sort()).toEqual(['dev', 'ops']);
    const token = await new SsoTokenKeyring(rig.keyring).get(START_URL);
    expect(token?.refreshToken).toMatch(/^refreshtoken-/);
  });

  it('serves cached role credentials with no call to the portal', async () => {
    await rig.chain('dev').credentials();
    await rig.chain('dev').credentials();
    expect(rig.portal.count()).toBe(1);
  });

  it('polls at the interval the service gives and slows down by 5 s on each SlowDownException', async () => {
    rig.oidc.slowDown(2);
    rig.onSleep = (n) => {
      if (n === 3) rig.oidc.approve(rig.prompts[0]!.userCode);
    };
    await rig.chain('dev').credentials();
    expect(rig.sleeps).toEqual([1_000, 6_000, 11_000]);
    expect(rig.oidc.calls.filter((c) => c.operation === 'CreateToken').map((c) => c.error ?? 'ok')).toEqual(['SlowDownException', 'SlowDownException', 'ok']);
  });

  it('says in one line that the code expired when nobody approves it', async () => {
    rig.onSleep = () => rig.clock.advance(59_000); // a minute between polls: ten polls to the end
    const error = await failure(rig.chain('dev').credentials());
    expect(error.code).toBe('SSO_LOGIN_FAILED');
    expect(error.toLine()).toBe(
      `the sign-in code ${rig.prompts[0]!.userCode} for ${START_URL} expired before it was approved (profile dev); run the command again and approve the code in the browser within 10m`,
    );
    expect(await rig.keyring.keys()).not.toContain(`oidc:${START_URL}`);
  });

  it('refreshes the token with the refresh token when it runs out, with no new sign-in', async () => {
    await rig.chain('dev').credentials();
    rig.clock.advance(3_600_000); // the token and the role credentials (1 h each) are over
    await rig.chain('dev').credentials();
    expect(rig.oidc.count('CreateToken', 'refresh_token')).toBe(1);
    expect(rig.oidc.count('StartDeviceAuthorization')).toBe(1);
    expect(rig.prompts).toHaveLength(1);
  });

  it('the legacy form has no refresh token: an expired sign-in means signing in again', async () => {
    await rig.chain('legacy').credentials();
    rig.clock.advance(3_600_000);
    await rig.chain('legacy').credentials();
    expect(rig.oidc.count('CreateToken', 'refresh_token')).toBe(0);
    expect(rig.oidc.count('StartDeviceAuthorization')).toBe(2);
  });

  it('without a prompt (the daemon) a revoked refresh token is SSO_LOGIN_REQUIRED, and no device code is asked for', async () => {
    await rig.chain('dev').credentials();
    rig.clock.advance(3_600_000);
    rig.oidc.revokeRefreshTokens();
    expect(await rig.chain('dev', { signIn: false }).needsSsoSignIn()).toBe(false);
    const error = await failure(rig.chain('dev', { signIn: false, roleCache: false }).credentials());
    expect(error.code).toBe('SSO_LOGIN_REQUIRED');
    expect(error.toLine()).toMatch(/^profile dev needs a new IAM Identity Center sign-in at https:\/\/my-org\.awsapps\.com\/start; run `vault exec dev`/);
    expect(rig.oidc.count('StartDeviceAuthorization')).toBe(1);
    expect(await rig.chain('dev', { signIn: false }).needsSsoSignIn()).toBe(true);
  });

  it('a 401 from the portal drops the cached token and signs in once more', async () => {
    await rig.chain('dev').credentials();
    rig.oidc.revokeAccessTokens();
    await rig.chain('ops').credentials();
    expect(rig.portal.calls.map((c) => c.error ?? 'ok')).toEqual(['ok', 'UnauthorizedException', 'ok']);
    expect(rig.oidc.count('StartDeviceAuthorization')).toBe(2);
    expect(rig.prompts).toHaveLength(2);
  });

  it('chains a role on top of the SSO role credentials (role chaining: at most 1 h)', async () => {
    const deployed = await rig.chain('deploy').credentials();
    expect(deployed.assumedRoleArn).toMatch(/^arn:aws:sts::333333333333:assumed-role\/deploy\//);
    const assume = rig.sts.calls.find((c) => c.action === 'AssumeRole');
    expect(assume?.durationSeconds).toBe(3_600);
    expect(rig.sts.describeKey(deployed.accessKeyId)?.chained).toBe(true);
  });
});
