import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialKeyring, ManualClock, MemoryKeyring, SdkStsGateway } from '@vault/core';
import { startStsStandIn, type StsFaultKind, type StsStandIn } from '@vault/stand-ins';
import { coreSourceFactory, DaemonClient, DEFAULT_BACKOFF, ManualScheduler, startDaemon, type Daemon, type Session } from '@vault/server';
import { tempStateDir } from '@vault/stand-ins/server';
import { cmdlineOf, findLeaks } from '../support/leaks.js';
import { readmeConfig, MFA_SERIAL, ROLE_A, ROLE_B } from '../support/world.js';
import { httpRequest, seededRandom, type Reply } from './http.js';

/**
 * STS faults: a real daemon (listeners, control socket, log file) whose sessions run the
 * real credential chain and the real SDK gateway against the project's STS stand-in, with one
 * injected clock and scheduler for all of it — retries are driven and measured on that clock,
 * nothing sleeps. Each fault kind the stand-in can inject is tried while valid credentials remain,
 * after they run out, and when it clears.
 */
const SECOND = 1_000;
const MINUTE = 60 * SECOND;

interface Rig {
  clock: ManualClock;
  scheduler: ManualScheduler;
  sts: StsStandIn;
  daemon: Daemon;
  client: DaemonClient;
  /** Jitter values the daemon drew, in order. */
  draws: number[];
  secrets(): string[];
  close(): Promise<void>;
}

const rigs: Rig[] = [];
afterEach(async () => {
  while (rigs.length > 0) await rigs.pop()!.close();
});

async function rig(gateway: { maxAttempts?: number; requestTimeoutMs?: number } = {}, seed = 42): Promise<Rig> {
  // Start at the real time: the SDK signs with the wall clock; the stand-in checks no request time.
  const clock = new ManualClock(Date.now());
  const scheduler = new ManualScheduler(clock);
  const sts = await startStsStandIn({ clock, checkRequestTime: false });
  const user = sts.addUser({ arn: 'arn:aws:iam::111111111111:user/central-user' });
  sts.addMfaDevice(MFA_SERIAL, '123456');
  sts.addRole({ arn: ROLE_A, requireMfa: true });
  sts.addRole({ arn: ROLE_B, requireMfa: true });
  const home = mkdtempSync(join(tmpdir(), 'vault-sts-faults-'));
  const configFile = join(home, 'config');
  writeFileSync(configFile, readmeConfig(), { mode: 0o600 });
  const keyring = new MemoryKeyring();
  await new CredentialKeyring(keyring).set('central-account', user);
  const dir = tempStateDir();
  const draws: number[] = [];
  const jitter = seededRandom(seed);
  const daemon = await startDaemon({
    stateDir: dir.stateDir,
    sourceFactory: coreSourceFactory({
      env: { AWS_CONFIG_FILE: configFile, AWS_ENDPOINT_URL_STS: sts.url },
      homeDir: home,
      keyring: async () => keyring,
      sts: new SdkStsGateway({ maxAttempts: gateway.maxAttempts ?? 1, requestTimeoutMs: gateway.requestTimeoutMs ?? 2_000 }),
      clock,
    }),
    clock,
    scheduler,
    random: () => {
      const r = jitter();
      draws.push(r);
      return r;
    },
    handleSignals: false,
    peerPids: false,
  });
  const client = new DaemonClient({ stateDir: dir.stateDir, timeoutMs: 10_000 });
  const r: Rig = {
    clock,
    scheduler,
    sts,
    daemon,
    client,
    draws,
    secrets: () => [user.secretAccessKey, ...sts.issuedSecrets()],
    async close() {
      await daemon.stop();
      await sts.close();
      rmSync(home, { recursive: true, force: true });
      dir.cleanup();
    },
  };
  rigs.push(r);
  return r;
}

/** A refresh started by a timer runs real HTTP to the stand-in: wait for it before looking. */
async function idle(session: Session): Promise<void> {
  while (session.credentials.refreshing) await new Promise((resolve) => setTimeout(resolve, 1));
}

function get(r: Rig, created: { id: string; token: string }): Promise<Reply> {
  return httpRequest({ port: r.daemon.port, path: `/creds/${created.id}`, headers: { authorization: created.token } });
}

const FAULTS: Array<[string, StsFaultKind, string, RegExp]> = [
  ['throttle', { kind: 'throttle' }, 'STS_THROTTLED', /failed: Throttling: Rate exceeded/],
  ['internal', { kind: 'internal' }, 'STS_UNAVAILABLE', /failed: InternalFailure: /],
  ['reset', { kind: 'reset' }, 'STS_UNAVAILABLE', /the connection to STS at http:\/\/127\.0\.0\.1:\d+ was reset \(ECONNRESET\)/],
  // Longer than the SDK's request timeout (250 ms here; 3 s in the daemon): 2 s, 8× the timeout.
  ['delay', { kind: 'delay', ms: 2_000 }, 'STS_UNAVAILABLE', /STS at http:\/\/127\.0\.0\.1:\d+ did not answer in time \(ETIMEDOUT\)/],
  ['malformed', { kind: 'malformed' }, 'STS_UNAVAILABLE', /STS at http:\/\/127\.0\.0\.1:\d+ sent a malformed reply/],
  ['accessDenied', { kind: 'accessDenied' }, 'STS_ACCESS_DENIED', /failed: AccessDenied: User: arn:aws:iam::111111111111:user\/central-user is not authorized/],
];

/** Equal jitter as the daemon documents it: 5 s doubling to 5 min, half fixed, half random. */
function expectedDelay(failure: number, draw: number): number {
  const exp = Math.min(DEFAULT_BACKOFF.maxMs, DEFAULT_BACKOFF.baseMs * 2 ** (failure - 1));
  return Math.round(exp / 2 + draw * (exp / 2));
}

/** The stand-in records a delayed call when the delay ends: wait (briefly, really) until it has. */
async function recorded(r: Rig, calls: number): Promise<void> {
  for (let i = 0; i < 400 && r.sts.calls.length < calls; i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

const figures: string[] = [];

describe('STS faults behind a daemon session (real chain, real SDK, STS stand-in)', () => {
  it.each(FAULTS)('%s: clients keep the valid credentials, retries back off with jitter, a clear 503 when none are left, automatic recovery', async (name, fault, code, says) => {
    // Only `delay` needs the SDK to give up quickly; a fault STS answers at once keeps the rig's
    // 2 s, so that a loaded machine (the suite runs several files at a time) cannot turn it into a
    // timeout.
    const r = await rig({ requestTimeoutMs: name === 'delay' ? 250 : 2_000 }, FAULTS.findIndex(([n]) => n === name) + 1);
    const created = await r.client.createSession({ profile: 'account-a', kind: 'ecs', mfaToken: '123456' });
    const session = r.daemon.registry.get(created.id)!;
    const t0 = r.clock.now();
    const first = await get(r, created);
    expect(first.status).toBe(200);
    const key0 = (JSON.parse(first.body) as { AccessKeyId: string }).AccessKeyId;
    r.sts.resetCalls();
    const fetchesBefore = session.credentials.fetches;
    // STS is down for AssumeRole from now on (the MFA session is cached: no GetSessionToken needed).
    r.sts.setFaultMode((request) => (request.action === 'AssumeRole' ? fault : undefined));

    // 1. Refresh starts at 20 min left (t0 + 40 min); until 15 min are left (t0 + 45 min) the
    //    clients keep getting the credentials that are still valid, whatever STS does.
    const floor = t0 + 45 * MINUTE;
    let servedWhileDown = 0;
    let answeredDuringRefresh = false;
    for (;;) {
      const next = r.scheduler.nextAt();
      if (next === undefined || next >= floor) break;
      await r.scheduler.advanceTo(next);
      if (session.credentials.refreshing) {
        // A refresh is in flight (for `delay`, hanging until the SDK gives up): the route does not wait for it.
        const during = await get(r, created);
        expect(during.status).toBe(200);
        answeredDuringRefresh ||= session.credentials.refreshing;
      }
      await idle(session);
      const reply = await get(r, created);
      expect(reply.status, reply.body).toBe(200);
      expect((JSON.parse(reply.body) as { AccessKeyId: string }).AccessKeyId).toBe(key0);
      servedWhileDown++;
    }
    const retriesWhileValid = session.credentials.failures;
    expect(retriesWhileValid).toBeGreaterThanOrEqual(4);
    if (name === 'delay') expect(answeredDuringRefresh).toBe(true);

    // 2. Past the floor nothing valid is left: 503 saying what happened and what to run.
    await r.scheduler.advanceTo(floor);
    await idle(session);
    const started = Date.now();
    const down = await get(r, created);
    const answeredInMs = Date.now() - started;
    expect(down.status).toBe(503);
    const body = JSON.parse(down.body) as { Code: string; Message: string };
    expect(Object.keys(body).sort()).toEqual(['Code', 'Message']);
    expect(body.Code).toBe(code);
    expect(body.Message).toContain(`session ${created.id} (profile account-a) has no valid credentials left: refreshing them failed (${code}: AssumeRole of ${ROLE_A} for profile account-a`);
    expect(body.Message).toMatch(says);
    expect(body.Message).toMatch(/retrying in \d+ s/);
    expect(body.Message).toContain(`vault session renew ${created.id}`);
    expect(body.Message).not.toContain('\n');
    if (name === 'delay') {
      // A request that finds the retry due makes the call itself and waits for it — for the SDK's
      // timeout, not for STS: the stand-in is still holding that call when the client has its answer.
      const due = session.credentials.nextAttemptAt;
      r.clock.set(due);
      const waited = await get(r, created);
      expect(waited.status).toBe(503);
      expect(JSON.parse(waited.body).Message).toMatch(says);
      expect(r.sts.calls.filter((c) => c.at === due)).toEqual([]);
    }
    const listed = await r.client.getSession(created.id);
    expect(listed).toMatchObject({ state: 'failed', lastError: { code } });
    expect(listed.refreshFailures).toBe(session.credentials.failures);

    // 3. STS stays down to t0 + 75 min: the backoff keeps growing, to its 5-minute cap.
    const downUntil = t0 + 75 * MINUTE;
    for (;;) {
      const next = r.scheduler.nextAt();
      if (next === undefined || next >= downUntil) break;
      await r.scheduler.advanceTo(next);
      await idle(session);
      expect((await get(r, created)).status).toBe(503);
    }
    const attempts = session.credentials.fetches - fetchesBefore;
    await recorded(r, attempts);
    const failed = r.sts.calls.filter((c) => c.action === 'AssumeRole');
    // Counted at the stand-in: every daemon attempt reached STS once (the SDK's own retries are off here).
    expect(failed).toHaveLength(attempts);
    expect(failed.every((c) => c.fault === fault.kind && !c.ok)).toBe(true);
    const gaps = failed.slice(1).map((c, i) => c.at - failed[i]!.at);
    gaps.forEach((gap, i) => expect(gap, `gap ${i + 1}`).toBe(expectedDelay(i + 1, r.draws[i]!)));
    // Equal jitter never shrinks a delay while the doubling is below the cap: the spacing grows.
    for (let i = 1; i < gaps.length && DEFAULT_BACKOFF.baseMs * 2 ** i <= DEFAULT_BACKOFF.maxMs; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]!);
    // Jitter: the gaps are not the bare doublings.
    expect(new Set(gaps.map((g, i) => Math.round((g / Math.min(DEFAULT_BACKOFF.maxMs, DEFAULT_BACKOFF.baseMs * 2 ** i)) * 100))).size).toBeGreaterThan(2);
    expect(Math.max(...gaps)).toBeGreaterThan(DEFAULT_BACKOFF.maxMs / 2);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(DEFAULT_BACKOFF.maxMs);

    // 4. STS comes back: the next scheduled retry succeeds by itself, with no command run.
    r.sts.clearFaults();
    await r.scheduler.advanceTo(r.scheduler.nextAt()!);
    await idle(session);
    const back = await get(r, created);
    expect(back.status, back.body).toBe(200);
    const creds = JSON.parse(back.body) as { AccessKeyId: string; Expiration: string };
    expect(creds.AccessKeyId).not.toBe(key0);
    expect(r.sts.describeKey(creds.AccessKeyId)?.roleArn).toBe(ROLE_A);
    expect(Date.parse(creds.Expiration) - r.clock.now()).toBeGreaterThan(15 * MINUTE);
    expect((await r.client.getSession(created.id)).state).toBe('active');
    expect(r.sts.count('GetSessionToken')).toBe(0);

    figures.push(
      `FIGURE stsFaults fault=${name} injected=${failed.length} servedWhileValid=${servedWhileDown} retriesWhileValid=${retriesWhileValid} ` +
        `retriesTotal=${attempts} gapsSeconds=${gaps.map((g) => (g / 1000).toFixed(1)).join(',')} answered503In=${answeredInMs}ms recovered=yes`,
    );
    await leakScan(r, [created.token], { '503 body': down.body, 'session ls': JSON.stringify(listed) });
  });

  it('an IMDS session under a fault: its credentials route keeps serving, then 503 with the same message, then recovers', async () => {
    const r = await rig(); // STS answers this fault at once: no short SDK timeout, the rig's 2 s leaves a loaded machine room
    const created = await r.client.createSession({ profile: 'account-a', kind: 'imds', mfaToken: '123456' });
    const session = r.daemon.registry.get(created.id)!;
    const port = Number(/:(\d+)\/?$/.exec(created.imdsEndpoint!)![1]);
    const t0 = r.clock.now();
    const token = (await httpRequest({ port, path: '/latest/api/token', method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } })).body;
    const imdsGet = () => httpRequest({ port, path: '/latest/meta-data/iam/security-credentials/account-a', headers: { 'x-aws-ec2-metadata-token': token } });
    expect((await imdsGet()).status).toBe(200);
    r.sts.setFaultMode((request) => (request.action === 'AssumeRole' ? { kind: 'throttle' } : undefined));
    // IMDS keeps 30 min: refresh from 35 min left (t0 + 25 min), floor at t0 + 30 min.
    await r.scheduler.advanceTo(t0 + 29 * MINUTE);
    await idle(session);
    expect((await imdsGet()).status).toBe(200);
    await r.scheduler.advanceTo(t0 + 31 * MINUTE);
    await idle(session);
    const down = await imdsGet();
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body)).toMatchObject({ Code: 'STS_THROTTLED', Message: expect.stringMatching(/Throttling.*vault session renew/) });
    r.sts.clearFaults();
    await r.scheduler.advanceTo(r.scheduler.nextAt()!);
    await idle(session);
    expect((await imdsGet()).status).toBe(200);
    await leakScan(r, [created.token, token], { '503 body': down.body });
  });

  it('expiredToken: STS says the MFA session is over — no retries, needs-mfa at once, valid credentials still served, renew with a code recovers', async () => {
    const r = await rig(); // STS answers this fault at once: no short SDK timeout, the rig's 2 s leaves a loaded machine room
    const created = await r.client.createSession({ profile: 'account-a', kind: 'ecs', mfaToken: '123456' });
    const session = r.daemon.registry.get(created.id)!;
    const t0 = r.clock.now();
    const first = await get(r, created);
    const key0 = (JSON.parse(first.body) as { AccessKeyId: string }).AccessKeyId;
    r.sts.resetCalls();
    r.sts.setFaultMode((request) => (request.action === 'AssumeRole' ? { kind: 'expiredToken' } : undefined));

    // The refresh at 20 min left meets ExpiredToken: retrying with that MFA session cannot help,
    // and the daemon never prompts, so the session asks for a code at once and stops calling STS.
    await r.scheduler.advanceTo(t0 + 40 * MINUTE);
    await idle(session);
    expect(session.state).toBe('needs-mfa');
    expect(r.sts.calls.map((c) => `${c.action} ${c.errorCode ?? 'ok'}`)).toEqual(['AssumeRole ExpiredToken']);
    expect(session.credentials.failures).toBe(1);
    // Until 15 min are left the clients keep the valid credentials.
    await r.scheduler.advanceTo(t0 + 44 * MINUTE);
    const still = await get(r, created);
    expect(still.status).toBe(200);
    expect((JSON.parse(still.body) as { AccessKeyId: string }).AccessKeyId).toBe(key0);
    // Then a 503 that says what happened and what to run; still no retry reached STS.
    await r.scheduler.advanceTo(t0 + 75 * MINUTE);
    await idle(session);
    const down = await get(r, created);
    expect(down.status).toBe(503);
    const body = JSON.parse(down.body) as { Code: string; Message: string };
    expect(body.Code).toBe('SESSION_NEEDS_MFA');
    expect(body.Message).toContain(`session ${created.id} (profile account-a) has no valid credentials left: its MFA session has expired`);
    expect(body.Message).toContain(`vault session renew ${created.id}`);
    expect(r.sts.calls).toHaveLength(1);
    const listed = await r.client.getSession(created.id);
    expect(listed.state).toBe('needs-mfa');

    // `vault session renew ID` with a code: one GetSessionToken, one AssumeRole, same URI and token.
    r.sts.clearFaults();
    const renewed = await r.client.renewSession(created.id, '123456');
    expect(renewed.state).toBe('active');
    const back = await get(r, created);
    expect(back.status, back.body).toBe(200);
    expect(r.sts.calls.slice(1).map((c) => `${c.action} ${c.errorCode ?? 'ok'}`)).toEqual(['GetSessionToken ok', 'AssumeRole ok']);
    figures.push(`FIGURE stsFaults fault=expiredToken injected=1 retries=0 state=needs-mfa renewedWith=1-GetSessionToken recovered=yes`);
    await leakScan(r, [created.token], { '503 body': down.body, 'session ls': JSON.stringify(listed) });
  });

  it('with the SDK retries the daemon really runs (maxAttempts 3): each daemon attempt is three STS calls; a fault the SDK absorbs never reaches the client', async () => {
    const r = await rig({ maxAttempts: 3, requestTimeoutMs: 2_000 });
    const created = await r.client.createSession({ profile: 'account-a', kind: 'ecs', mfaToken: '123456' });
    const session = r.daemon.registry.get(created.id)!;
    const t0 = r.clock.now();
    r.sts.resetCalls();
    // Two throttles: the SDK's third attempt succeeds, the daemon sees no failure at all.
    r.sts.injectFaults([{ kind: 'throttle', times: 2, actions: ['AssumeRole'] }]);
    await r.scheduler.advanceTo(t0 + 40 * MINUTE);
    await idle(session);
    expect(session.credentials.failures).toBe(0);
    expect(r.sts.calls.map((c) => c.errorCode ?? 'ok')).toEqual(['Throttling', 'Throttling', 'ok']);
    // Three 500s: the SDK gives up after its three attempts; the daemon retries on its own backoff.
    const t1 = r.clock.now();
    r.sts.resetCalls();
    r.sts.injectFaults([{ kind: 'internal', times: 3, actions: ['AssumeRole'] }]);
    await r.scheduler.advanceTo(t1 + 40 * MINUTE);
    await idle(session);
    expect(session.credentials.failures).toBe(1);
    await r.scheduler.advanceTo(r.scheduler.nextAt()!);
    await idle(session);
    expect(r.sts.calls.map((c) => c.errorCode ?? 'ok')).toEqual(['InternalFailure', 'InternalFailure', 'InternalFailure', 'ok']);
    expect((await get(r, created)).status).toBe(200);
    figures.push('FIGURE stsFaults sdkRetries maxAttempts=3 absorbed=2-throttles daemonAttempts=2 stsCalls=4 (3 failed + 1 ok)');
  });

  it('prints the figures', () => {
    for (const line of figures) console.log(line);
    expect(figures.length).toBe(FAULTS.length + 2);
  });
});

/** The daemon's log (after stop), its state files, what the clients saw and this process's arguments: no secret. */
async function leakScan(r: Rig, extraSecrets: string[], texts: Record<string, string>): Promise<void> {
  const cmdline = cmdlineOf(process.pid);
  await r.daemon.stop();
  const log = readFileSync(r.daemon.paths.logFile, 'utf8');
  expect(log).toMatch(/refresh/i);
  const leaks = findLeaks([...r.secrets(), ...extraSecrets], { ...texts, 'daemon.log': log, cmdline }, [r.daemon.paths.stateDir]);
  expect(leaks).toEqual([]);
}
