import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigLoader, CredentialChain, CredentialKeyring, ManualClock, MemoryKeyring, SdkStsGateway, CredentialCache, parseConfigFile } from '@vault/core';
import { startSsoOidcStandIn, startSsoPortalStandIn, startStsStandIn, type SsoOidcStandIn, type SsoPortalStandIn, type StsStandIn } from '@vault/stand-ins';
import { AuditLog, buildServer, coreSourceFactory, ManualScheduler, SessionRegistry, type Session } from '@vault/server';
import { captureLogger } from '@vault/stand-ins/server';

/**
 * A daemon session on an IAM Identity Center profile, over the real chain, the SDK clients and the
 * OIDC, portal and STS stand-ins, with one injected clock: it refreshes with the sign-in the CLI
 * left in the keyring (and its refresh token) without a prompt, shows needs-login when it cannot,
 * and serves again after the CLI signs in (`vault session renew`).
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const PORT = 47_260;
const START_URL = 'https://my-org.awsapps.com/start';
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
`;

interface Rig {
  clock: ManualClock;
  scheduler: ManualScheduler;
  sts: StsStandIn;
  oidc: SsoOidcStandIn;
  portal: SsoPortalStandIn;
  registry: SessionRegistry;
  app: ReturnType<typeof buildServer>;
  logLines: string[];
  /** What `vault session start` / `renew` do in the CLI: a device sign-in, approved at once. */
  cliSignIn: () => Promise<void>;
  close: () => Promise<void>;
}

async function rig(): Promise<Rig> {
  const clock = new ManualClock(Date.now());
  const scheduler = new ManualScheduler(clock);
  const sts = await startStsStandIn({ clock });
  const oidc = await startSsoOidcStandIn({ clock, accessTokenSeconds: 3_600 });
  const portal = await startSsoPortalStandIn({ oidc, sts, roleSeconds: 3_600 });
  portal.addAssignment('111111111111', 'Developer');
  const home = mkdtempSync(join(tmpdir(), 'vault-sso-daemon-'));
  const configFile = join(home, 'config');
  writeFileSync(configFile, CONFIG, { mode: 0o600 });
  const env = { AWS_CONFIG_FILE: configFile, AWS_ENDPOINT_URL_STS: sts.url, AWS_ENDPOINT_URL_SSO_OIDC: oidc.url, AWS_ENDPOINT_URL_SSO: portal.url };
  const keyring = new MemoryKeyring();
  const log = captureLogger();
  const audit = new AuditLog(log.logger, false);
  const registry = new SessionRegistry({
    sourceFactory: coreSourceFactory({ env, homeDir: home, keyring: async () => keyring, sts: new SdkStsGateway({ maxAttempts: 1 }), clock, logger: log.logger }),
    clock,
    scheduler,
    random: () => 0.5,
    logger: log.logger,
    audit,
  });
  const app = buildServer({ sessions: registry, port: PORT, audit, peerUids: false });
  const cliSignIn = async () => {
    const chain = new CredentialChain(new ConfigLoader(parseConfigFile(CONFIG, configFile), { env }).load('dev'), {
      credentials: new CredentialKeyring(keyring),
      cache: new CredentialCache(keyring),
      sts: new SdkStsGateway(),
      clock,
      env,
      ssoSignIn: (prompt) => void oidc.approve(prompt.userCode),
      ssoSleep: async () => undefined,
    });
    await chain.renewSsoSignIn();
  };
  return {
    clock,
    scheduler,
    sts,
    oidc,
    portal,
    registry,
    app,
    logLines: log.lines,
    cliSignIn,
    close: async () => {
      await registry.stopAll();
      await app.close();
      await Promise.all([portal.close(), oidc.close(), sts.close()]);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

async function idle(session: Session): Promise<void> {
  while (session.credentials.refreshing) await new Promise((resolve) => setTimeout(resolve, 1));
}

function getCreds(r: Rig, session: Session) {
  return r.app.inject({ method: 'GET', url: `/creds/${session.id}`, headers: { host: `127.0.0.1:${PORT}`, authorization: session.token } });
}

describe('a daemon session on an IAM Identity Center profile', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
  });
  afterEach(async () => {
    await r.close();
  });

  it('serves past the first token\'s expiry through the refresh token, goes to needs-login when it is revoked, and serves again after a sign-in in the CLI', async () => {
    await r.cliSignIn();
    const session = await r.registry.create({ profile: 'dev', kind: 'ecs' });
    const started = r.clock.now();
    for (let t = 0; t < 3 * HOUR; t += MINUTE) {
      await r.scheduler.advance(MINUTE);
      await idle(session);
      const res = await getCreds(r, session);
      expect(res.statusCode).toBe(200);
      expect(r.sts.describeKey(res.json().AccessKeyId)?.arn).toMatch(/^arn:aws:sts::111111111111:assumed-role\/AWSReservedSSO_Developer_/);
    }
    // One sign-in; the 1 h tokens were renewed with the refresh token, never with a prompt.
    expect(r.oidc.count('StartDeviceAuthorization')).toBe(1);
    // Role credentials (1 h) are refreshed 20 min before they end: at 0, 40, 80, 120 and 160 min; the
    // token (1 h) has run out at 80 and 160 min, so two of those refresh it first.
    expect(r.oidc.count('CreateToken', 'refresh_token')).toBe(2);
    expect(r.portal.count()).toBe(5);
    expect(session.state).toBe('active');

    r.oidc.revokeRefreshTokens();
    const until = r.clock.now() + 2 * HOUR;
    while (session.state !== 'needs-login' && r.clock.now() < until) {
      await r.scheduler.advance(MINUTE);
      await idle(session);
    }
    expect(session.state).toBe('needs-login');
    expect(r.oidc.count('StartDeviceAuthorization')).toBe(1); // the daemon never starts a sign-in
    await r.scheduler.advanceTo(r.clock.now() + HOUR);
    const refused = await getCreds(r, session);
    expect(refused.statusCode).toBe(503);
    expect(refused.json().Code).toBe('SSO_LOGIN_REQUIRED');
    expect(refused.json().Message).toContain(`vault session renew ${session.id}`);

    await r.cliSignIn();
    await r.registry.renew(session.id);
    expect(session.state).toBe('active');
    const again = await getCreds(r, session);
    expect(again.statusCode).toBe(200);
    expect(r.oidc.count('StartDeviceAuthorization')).toBe(2);
    expect(r.clock.now() - started).toBeGreaterThan(4 * HOUR);

    const logs = r.logLines.join('\n');
    for (const secret of [...r.oidc.issuedSecrets(), ...r.sts.issuedSecrets()]) expect(logs).not.toContain(secret);
  }, 120_000);
});
