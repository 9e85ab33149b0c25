import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialKeyring, ManualClock, MemoryKeyring, SdkStsGateway } from '@vault/core';
import { startStsStandIn, type StsStandIn } from '@vault/stand-ins';
import { AuditLog, buildServer, coreSourceFactory, ManualScheduler, SessionRegistry, type Session } from '@vault/server';
import { captureLogger } from '@vault/stand-ins/server';
import { readmeConfig, MFA_SERIAL, ROLE_A, ROLE_B } from '../support/world.js';

/**
 * The daemon's session machinery over the real credential chain, the real SDK gateway and the
 * project's STS stand-in, with one injected clock for all of them: what the fakes in
 * packages/server prove about refresh timing, proved again with real STS calls counted at the stand-in.
 */
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const PORT = 47_200;

interface Rig {
  clock: ManualClock;
  scheduler: ManualScheduler;
  sts: StsStandIn;
  registry: SessionRegistry;
  app: ReturnType<typeof buildServer>;
  secrets: () => string[];
  logLines: string[];
  close: () => Promise<void>;
}

async function rig(): Promise<Rig> {
  // Start at the real time: the SDK signs with the wall clock, the stand-in checks no request time.
  const clock = new ManualClock(Date.now());
  const scheduler = new ManualScheduler(clock);
  const sts = await startStsStandIn({ clock, checkRequestTime: false });
  const user = sts.addUser({ arn: 'arn:aws:iam::111111111111:user/central-user' });
  sts.addMfaDevice(MFA_SERIAL, '123456');
  sts.addRole({ arn: ROLE_A, requireMfa: true });
  sts.addRole({ arn: ROLE_B, requireMfa: true });

  const home = mkdtempSync(join(tmpdir(), 'vault-daemon-chain-'));
  const configFile = join(home, 'config');
  writeFileSync(configFile, readmeConfig(), { mode: 0o600 });
  const keyring = new MemoryKeyring();
  await new CredentialKeyring(keyring).set('central-account', user);

  const log = captureLogger();
  const audit = new AuditLog(log.logger, false);
  const registry = new SessionRegistry({
    sourceFactory: coreSourceFactory({
      env: { AWS_CONFIG_FILE: configFile, AWS_ENDPOINT_URL_STS: sts.url },
      homeDir: home,
      keyring: async () => keyring,
      sts: new SdkStsGateway({ maxAttempts: 1 }),
      clock,
      logger: log.logger,
    }),
    clock,
    scheduler,
    random: () => 0.5,
    logger: log.logger,
    audit,
  });
  // inject() has no connection whose owner could be looked up.
  const app = buildServer({ sessions: registry, port: PORT, audit, peerUids: false });
  return {
    clock,
    scheduler,
    sts,
    registry,
    app,
    secrets: () => [user.secretAccessKey, ...sts.issuedSecrets()],
    logLines: log.lines,
    close: async () => {
      await registry.stopAll();
      await app.close();
      await sts.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A refresh started by a timer runs real HTTP to the stand-in: wait for it before looking. */
async function idle(session: Session): Promise<void> {
  while (session.credentials.refreshing) await new Promise((resolve) => setTimeout(resolve, 1));
}

function getCreds(r: Rig, session: Session, token = session.token, path = `/creds/${session.id}`) {
  return r.app.inject({ method: 'GET', url: path, headers: { host: `127.0.0.1:${PORT}`, authorization: token } });
}

describe('the daemon over the real chain and the STS stand-in', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
  });
  afterEach(async () => {
    await r.close();
  });

  it('three hours of 1 h role credentials over an 8 h MFA session: never under 15 min, one GetSessionToken, five AssumeRole, no prompt; past the MFA end a clear 503, then renew and the same URI and token work', async () => {
    const started = r.clock.now();
    const session = await r.registry.create({ profile: 'account-a', kind: 'ecs', mfaToken: '123456' });
    const uri = `/creds/${session.id}`;
    const token = session.token;
    let minLeftMs = Infinity;
    let served = 0;
    for (let t = 0; t < 3 * HOUR; t += 5 * SECOND) {
      await r.scheduler.advance(5 * SECOND);
      await idle(session);
      const res = await getCreds(r, session);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(r.sts.describeKey(body.AccessKeyId)?.roleArn).toBe(ROLE_A);
      minLeftMs = Math.min(minLeftMs, Date.parse(body.Expiration) - r.clock.now());
      served++;
    }
    expect(served).toBe(2160);
    expect(minLeftMs).toBeGreaterThanOrEqual(15 * MINUTE);
    expect(r.sts.count('GetSessionToken')).toBe(1);
    // Refresh 20 min before each 1 h expiry: at 0, 40, 80, 120 and 160 minutes.
    expect(r.sts.count('AssumeRole')).toBe(5);
    expect(r.sts.calls.filter((c) => c.action === 'GetSessionToken').map((c) => c.durationSeconds)).toEqual([8 * 3600]);

    // The refresh at 8 h meets the end of the MFA session: the session says so and keeps serving
    // what it has until that falls under 15 min of life (8 h 05 min), then answers a clear 503.
    await r.scheduler.advanceTo(started + 8 * HOUR);
    await idle(session);
    expect(session.state).toBe('needs-mfa');
    await r.scheduler.advanceTo(started + 8 * HOUR + 4 * MINUTE);
    expect((await getCreds(r, session)).statusCode).toBe(200);
    await r.scheduler.advanceTo(started + 8 * HOUR + 6 * MINUTE);
    const expired = await getCreds(r, session);
    expect(expired.statusCode).toBe(503);
    expect(expired.json().Code).toBe('SESSION_NEEDS_MFA');
    expect(expired.json().Message).toContain(`vault session renew ${session.id}`);
    expect(r.sts.count('GetSessionToken')).toBe(1); // nobody was prompted, nothing was guessed

    await r.registry.renew(session.id, '123456');
    const again = await getCreds(r, session, token, uri);
    expect(again.statusCode).toBe(200);
    expect(Date.parse(again.json().Expiration) - r.clock.now()).toBeGreaterThan(HOUR - MINUTE);
    expect(r.sts.count('GetSessionToken')).toBe(2);
    expect(session.state).toBe('active');

    for (const secret of r.secrets()) expect(r.logLines.join('\n')).not.toContain(secret);
  });

  it('200 clients asking a fresh (lazy) session at once over real sockets: one STS call, every client answered', async () => {
    // An earlier command left an MFA session in the keyring (as `vault exec account-b -t …` would).
    await r.registry.create({ profile: 'account-b', kind: 'ecs', mfaToken: '123456' });
    const session = await r.registry.create({ profile: 'account-a', kind: 'ecs', lazy: true });
    r.sts.resetCalls();
    await r.app.listen({ host: '127.0.0.1', port: PORT });
    const agent = new Agent({ maxSockets: Infinity });
    const ask = () =>
      new Promise<{ status: number; arn: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: PORT, path: `/creds/${session.id}`, headers: { authorization: session.token }, agent }, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, arn: r.sts.describeKey(JSON.parse(body).AccessKeyId)?.roleArn ?? '' }));
        });
        req.on('error', reject);
        req.end();
      });
    const answers = await Promise.all(Array.from({ length: 200 }, ask));
    agent.destroy();
    expect(answers.filter((a) => a.status === 200 && a.arn === ROLE_A)).toHaveLength(200);
    expect(r.sts.count()).toBe(1);
    expect(r.sts.count('AssumeRole')).toBe(1);
  });

  it('role-arn/<ARN> assumes that role from the session credentials through the real chain', async () => {
    const session = await r.registry.create({ profile: 'account-a', kind: 'ecs', mfaToken: '123456' });
    r.sts.resetCalls();
    const res = await getCreds(r, session, session.token, `/creds/${session.id}/role-arn/${ROLE_B}`);
    expect(res.statusCode).toBe(200);
    expect(r.sts.describeKey(res.json().AccessKeyId)).toMatchObject({ roleArn: ROLE_B, mfaAuthenticated: true });
    expect(r.sts.count('AssumeRole')).toBe(1);
    expect(r.sts.count('GetSessionToken')).toBe(0);
  });
});
