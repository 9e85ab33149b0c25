import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { CredentialKeyring, ManualClock, MemoryKeyring, SdkStsGateway } from '@vault/core';
import { startStsStandIn } from '@vault/stand-ins';
import { AuditLog, CONTAINER_REFRESH_POLICY, IMDS_REFRESH_POLICY, ManualScheduler, SessionRegistry, coreSourceFactory } from '@vault/server';
import { MFA_SERIAL, ROLE_A } from '../lib/machine.mjs';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** A cached MFA session is reused while more than this is left (AWS_MIN_TTL's default). */
const MFA_SESSION_MIN_TTL_MS = 5 * MINUTE;

/**
 * Figure 6: STS calls per session-hour under steady load over a simulated 8 h. The daemon's
 * session machinery over the real credential chain, the real SDK gateway and the STS stand-in,
 * all on one injected clock: one container session and one IMDS session, each asked for
 * credentials every 10 s. The minimum the refresh rules allow: a 1 h role credential is refreshed
 * when `refreshAheadMs` of life is left, so each one serves (1 h − refreshAhead); while the 8 h MFA
 * session can be used (until 5 min before its end) that is ceil(7 h 55 / (1 h − refreshAhead))
 * AssumeRole calls per session, and one GetSessionToken shared by both.
 */
export async function stsPerHour(_machine, { hours = 8, everyMs = 10_000 } = {}) {
  const clock = new ManualClock(Date.now());
  const scheduler = new ManualScheduler(clock);
  const sts = await startStsStandIn({ clock });
  const user = sts.addUser({ arn: 'arn:aws:iam::111111111111:user/central-user' });
  sts.addMfaDevice(MFA_SERIAL, '123456');
  sts.addRole({ arn: ROLE_A, requireMfa: true });
  const home = mkdtempSync(join(tmpdir(), 'vault-bench-sts-'));
  writeFileSync(join(home, 'config'), `[profile central-account]\nregion = ap-northeast-1\nmfa_serial = ${MFA_SERIAL}\n\n[profile account-a]\ninclude_profile = central-account\nrole_arn = ${ROLE_A}\n`);
  const keyring = new MemoryKeyring();
  await new CredentialKeyring(keyring).set('central-account', user);
  const logger = pino({ level: 'silent' });
  const registry = new SessionRegistry({
    sourceFactory: coreSourceFactory({
      env: { AWS_CONFIG_FILE: join(home, 'config'), AWS_ENDPOINT_URL_STS: sts.url },
      homeDir: home,
      keyring: async () => keyring,
      sts: new SdkStsGateway({ maxAttempts: 1 }),
      clock,
      logger,
    }),
    clock,
    scheduler,
    random: () => 0.5,
    logger,
    audit: new AuditLog(logger, false),
  });
  try {
    const ecs = await registry.create({ profile: 'account-a', kind: 'ecs', mfaToken: '123456' });
    const imds = await registry.create({ profile: 'account-a', kind: 'imds' });
    const started = clock.now();
    let served = 0;
    const minLife = { ecs: Infinity, imds: Infinity };
    const keys = { ecs: new Set(), imds: new Set() };
    // Stop just short of the MFA session's end: past it a session needs `vault session renew`.
    for (let t = everyMs; t < hours * HOUR - MINUTE; t += everyMs) {
      await scheduler.advanceTo(started + t);
      for (const [kind, session] of [['ecs', ecs], ['imds', imds]]) {
        while (session.credentials.refreshing) await new Promise((resolve) => setTimeout(resolve, 1));
        const prepared = session.currentCredentials() ?? (await session.credentialsFor());
        minLife[kind] = Math.min(minLife[kind], prepared.expiresAt - clock.now());
        keys[kind].add(prepared.credentials.accessKeyId);
        served++;
      }
    }
    const gst = sts.count('GetSessionToken');
    // The first credentials of each session were fetched at creation, before the first request.
    const perSession = { ecs: keys.ecs.size, imds: keys.imds.size };
    const total = sts.count('AssumeRole');
    // Refreshes happen every (1 h − refreshAhead) while the MFA session can still be used, i.e.
    // until 5 min before its end (the chain's minimum TTL for reusing cached credentials).
    const usable = hours * HOUR - MFA_SESSION_MIN_TTL_MS;
    const expected = {
      ecs: Math.ceil(usable / (HOUR - CONTAINER_REFRESH_POLICY.refreshAheadMs)),
      imds: Math.ceil(usable / (HOUR - IMDS_REFRESH_POLICY.refreshAheadMs)),
    };
    const expectedTotal = expected.ecs + expected.imds;
    return {
      rows: [
        {
          figure: `STS calls over ${hours} h, 1 container + 1 IMDS session (${served} requests): AssumeRole`,
          vault: total,
          reference: expectedTotal,
          unit: 'calls',
          target: { text: `= ${expectedTotal} (the rules' minimum)` },
          pass: total === expectedTotal,
        },
        { figure: `STS calls over ${hours} h: GetSessionToken (shared MFA session)`, vault: gst, unit: 'calls', target: { equals: 1 }, pass: gst === 1 },
        {
          figure: 'STS calls per session-hour: container / IMDS session',
          vault: `${(perSession.ecs / hours).toFixed(2)} / ${(perSession.imds / hours).toFixed(2)}`,
          unit: 'calls/h',
        },
        {
          figure: 'least life left on credentials served: container / IMDS',
          vault: `${Math.floor(minLife.ecs / MINUTE)} / ${Math.floor(minLife.imds / MINUTE)}`,
          unit: 'min',
          target: { text: '≥ 15 / ≥ 30' },
          pass: minLife.ecs >= 15 * MINUTE && minLife.imds >= 30 * MINUTE,
        },
      ],
      expected,
      perSession,
      served,
    };
  } finally {
    await registry.stopAll();
    await sts.close();
    rmSync(home, { recursive: true, force: true });
  }
}
