import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, MemoryKeyring, VaultError, type Keyring } from '@vault/core';
import { DaemonClient } from '../client.js';
import { startDaemon, type Daemon, type StartDaemonOptions } from '../daemon/startDaemon.js';
import { candidatePort, ephemeralRange } from '../listenPort.js';
import { captureLogger, FakeSourceFactory, tempStateDir, type FakeCredentialSource } from '@vault/stand-ins/server';
import { ImdsTokens, imdsTokenKey } from '../routes/imds.js';
import { isProcessAlive } from '../processes.js';
import { isOwnerAlive, ownerInfo } from './orphanReaping.js';
import { credentialPortOf, loadForRestore, RestoredSource } from './restore.js';
import { ManualScheduler } from './scheduler.js';
import type { ImdsListener, Session } from './session.js';
import { SessionRegistry } from './sessionRegistry.js';
import { KeyringSessionStore, type SessionRecord, type SessionStore } from './sessionStore.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/**
 * A FakeSourceFactory whose sources also answer mfaSessionUsable and ssoSignInUsable (what
 * coreSource answers from the keyring).
 */
class MfaAwareFactory extends FakeSourceFactory {
  mfaUsable: boolean | undefined = true;
  ssoUsable: boolean | undefined = undefined;
  override async create(request: Parameters<FakeSourceFactory['create']>[0]): Promise<FakeCredentialSource> {
    const source = await super.create(request);
    return Object.assign(source, { mfaSessionUsable: async () => this.mfaUsable, ssoSignInUsable: async () => this.ssoUsable });
  }
}

function world() {
  const clock = new ManualClock(Date.UTC(2025, 0, 1, 9));
  const scheduler = new ManualScheduler(clock);
  const keyring = new MemoryKeyring();
  const store = new KeyringSessionStore(async () => keyring, '/state/test');
  const log = captureLogger();
  const newFactory = () => new MfaAwareFactory({ clock, roleDurationMs: HOUR, mfaDurationMs: 8 * HOUR });
  /** A registry as a daemon on port 20123 builds it; IMDS listeners are fakes that can be refused. */
  const registry = (factory = newFactory(), options: { store?: SessionStore; takenPorts?: Set<number>; credentialPort?: number } = {}) => {
    let nextPort = 21_000;
    const opened: number[] = [];
    const reg = new SessionRegistry({
      sourceFactory: factory,
      clock,
      scheduler,
      random: () => 0.5,
      logger: log.logger,
      store: options.store ?? store,
      credentialPort: () => options.credentialPort ?? 20_123,
      openImdsListener: async (_session: Session, port?: number): Promise<ImdsListener> => {
        const p = port ?? nextPort++;
        if (options.takenPorts?.has(p)) throw Object.assign(new Error(`listen EADDRINUSE 127.0.0.1:${p}`), { code: 'EADDRINUSE' });
        opened.push(p);
        return { port: p, close: async () => undefined };
      },
    });
    return { reg, factory, opened };
  };
  return { clock, scheduler, keyring, store, log, registry, newFactory };
}

describe('SessionRegistry with a session store', () => {
  it('records a session before answering its creator, again after each refresh, and forgets it on stop', async () => {
    const w = world();
    const { reg } = w.registry();
    const session = await reg.create({ profile: 'account-a', kind: 'ecs', durationSeconds: 3600, region: 'eu-west-1', ownerPid: process.pid });
    let [rec] = (await w.store.load()).records;
    expect(rec).toMatchObject({
      version: 1,
      id: session.id,
      token: session.token,
      profile: 'account-a',
      kind: 'ecs',
      lazy: false,
      port: 20_123,
      durationSeconds: 3600,
      requestedRegion: 'eu-west-1',
      region: 'eu-west-1',
      owner: { pid: process.pid },
      mfaExpiration: w.clock.now() + 8 * HOUR,
    });
    expect(rec!.credentials!.accessKeyId).toBe(session.credentials.latest!.credentials.accessKeyId);
    // The refresh-ahead timer fires: the record now holds the new credentials.
    await w.scheduler.advance(45 * MIN);
    [rec] = (await w.store.load()).records;
    expect(rec!.credentials!.accessKeyId).toBe(session.credentials.latest!.credentials.accessKeyId);
    expect(rec!.credentials!.fetchedAt).toBe(session.credentials.latest!.fetchedAt);
    await reg.stop(session.id);
    await reg.flushRecords();
    expect((await w.store.load()).records).toEqual([]);
  });

  it('a --no-session session is recorded as such, and restored with a source that still skips GetSessionToken', async () => {
    const w = world();
    const { reg } = w.registry();
    const session = await reg.create({ profile: 'account-a', kind: 'ecs', noSession: true });
    const [rec] = (await w.store.load()).records;
    expect(rec).toMatchObject({ id: session.id, noSession: true });
    const again = w.registry();
    const back = await again.reg.restore(rec!, 20_123);
    await (back.source as RestoredSource).source();
    expect(again.factory.requests).toEqual([{ profile: 'account-a', noSession: true }]);
  });

  it('keeps every session in one record set; a stop rewrites it without the stopped one', async () => {
    const w = world();
    const { reg } = w.registry();
    const a = await reg.create({ profile: 'account-a', kind: 'ecs' });
    w.clock.advance(1_000);
    const b = await reg.create({ profile: 'account-b', kind: 'imds' });
    expect((await w.store.load()).records.map((r) => r.id)).toEqual([a.id, b.id]);
    expect(await w.keyring.keys()).toHaveLength(1);
    await reg.stop(a.id);
    await reg.flushRecords();
    expect((await w.store.load()).records.map((r) => r.id)).toEqual([b.id]);
    await reg.stopAll();
    expect(await w.keyring.keys()).toEqual([]);
  });

  it('an IMDS session records its own port', async () => {
    const w = world();
    const { reg } = w.registry();
    const session = await reg.create({ profile: 'account-a', kind: 'imds' });
    expect((await w.store.load()).records[0]).toMatchObject({ kind: 'imds', port: session.imds!.port });
  });

  it('a stop during a write in flight: the writes land in order and the stopped session is not left behind', async () => {
    const w = world();
    let release!: () => void;
    let gated = false;
    const slow: SessionStore = {
      load: () => w.store.load(),
      clear: () => w.store.clear(),
      save: async (records) => {
        if (gated) {
          gated = false;
          await new Promise<void>((resolve) => (release = resolve));
        }
        await w.store.save(records);
      },
    };
    const { reg } = w.registry(undefined, { store: slow });
    const session = await reg.create({ profile: 'account-a', kind: 'ecs' });
    gated = true;
    await w.scheduler.advance(45 * MIN); // a refresh: its record write hangs
    await reg.stop(session.id);
    release();
    await reg.flushRecords();
    expect((await w.store.load()).records).toEqual([]);
  });

  it('a keyring that refuses the write does not stop the session; the warning names no secret', async () => {
    const w = world();
    const refusing: SessionStore = {
      load: () => w.store.load(),
      clear: () => Promise.resolve(false),
      save: () => Promise.reject(new VaultError('KEYRING_WRITE', 'the keyring refused the write')),
    };
    const { reg } = w.registry(undefined, { store: refusing });
    const session = await reg.create({ profile: 'account-a', kind: 'ecs' });
    expect(session.state).toBe('active');
    const warning = w.log.records().find((r) => r.event === 'session-record-failed');
    expect(warning).toMatchObject({ code: 'KEYRING_WRITE', sessions: 1 });
    expect(w.log.lines.join('\n')).not.toContain(session.token);
  });
});

describe('restoring a session', () => {
  async function recorded(kind: 'ecs' | 'imds' = 'ecs', request: { lazy?: boolean } = {}) {
    const w = world();
    const { reg } = w.registry();
    const session = await reg.create({ profile: 'account-a', kind, ...request });
    const served = session.credentials.latest?.credentials.accessKeyId;
    const [record] = (await w.store.load()).records;
    return { w, session, served, record: record! };
  }

  it('comes back with the same id, token and creation time, serving what it served: no STS call', async () => {
    const { w, session, served, record } = await recorded();
    w.clock.advance(5 * MIN);
    const { reg, factory } = w.registry();
    const back = await reg.restore(record, 20_123);
    expect(back).toMatchObject({ id: session.id, token: session.token, createdAt: session.createdAt, kind: 'ecs', restored: true, state: 'active' });
    expect(back.tokenMatches(session.token)).toBe(true);
    expect(back.currentCredentials()!.credentials.accessKeyId).toBe(served);
    expect(back.mfaExpiration()).toEqual(new Date(record.mfaExpiration!)); // from the record until the source knows
    await reg.verifyRestored(back);
    expect(factory.sources.every((s) => s.fetchCalls === 0)).toBe(true);
    expect(factory.requests).toEqual([{ profile: 'account-a' }]); // no MFA code: the cached MFA session serves
    // It keeps refreshing ahead on its own, as before the crash.
    await w.scheduler.advance(45 * MIN);
    expect(back.currentCredentials()!.expiresAt).toBeGreaterThan(record.credentials!.expiration);
    expect(factory.last.fetchCalls).toBe(1);
  });

  it('with nothing servable left (the daemon was down a long time) a non-lazy session fetches at once; a lazy one on the first request', async () => {
    const { w, record } = await recorded();
    w.clock.advance(50 * MIN); // under the container floor of 15 min
    const { reg, factory } = w.registry();
    const back = await reg.restore(record, 20_123);
    expect(back.currentCredentials()).toBeUndefined();
    await reg.verifyRestored(back);
    expect(factory.last.fetchCalls).toBe(1);
    expect(back.currentCredentials()).toBeDefined();

    const lazy = await recorded('ecs', { lazy: true });
    const again = lazy.w.registry();
    const lazyBack = await again.reg.restore(lazy.record, 20_123);
    await again.reg.verifyRestored(lazyBack);
    expect(again.factory.sources).toHaveLength(0);
    await lazyBack.credentialsFor();
    expect(again.factory.last.fetchCalls).toBe(1);
  });

  it('when its MFA session ended meanwhile: needs-mfa at once, still serving what is valid, then a clear error; renew revives it with the same token', async () => {
    const { w, session, record } = await recorded();
    const { reg, factory } = w.registry();
    factory.mfaUsable = false;
    const back = await reg.restore(record, 20_123);
    await reg.verifyRestored(back);
    expect(back.state).toBe('needs-mfa');
    expect(back.lastError?.message).toMatch(/MFA session for profile account-a ended while the daemon was down/);
    expect(back.currentCredentials()).toBeDefined(); // valid credentials keep being served
    w.clock.advance(50 * MIN);
    await w.scheduler.advance(0);
    expect(factory.last.fetchCalls).toBe(0); // halted: no STS call that could only fail
    const error = await back.credentialsFor().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SESSION_NEEDS_MFA' });
    expect((error as VaultError).hint).toContain(`vault session renew ${session.id}`);
    await reg.renew(back.id, '123456');
    expect(back.state).toBe('active');
    expect(factory.last.renewCodes).toEqual(['123456']);
    expect(back.token).toBe(session.token);
  });

  it('when its IAM Identity Center sign-in ended meanwhile (no refresh token left): needs-login at once, still serving what is valid; renew revives it with the same token', async () => {
    const { w, session, record } = await recorded();
    const { reg, factory } = w.registry();
    factory.ssoUsable = false;
    const back = await reg.restore(record, 20_123);
    await reg.verifyRestored(back);
    expect(back.state).toBe('needs-login');
    expect(back.lastError?.message).toMatch(/IAM Identity Center sign-in for profile account-a ended while the daemon was down/);
    expect(w.log.records().some((line) => line.event === 'restored-needs-login')).toBe(true);
    expect(back.currentCredentials()).toBeDefined(); // valid credentials keep being served
    w.clock.advance(50 * MIN);
    await w.scheduler.advance(0);
    expect(factory.last.fetchCalls).toBe(0); // halted: no portal call that could only fail
    const error = await back.credentialsFor().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SSO_LOGIN_REQUIRED' });
    expect((error as VaultError).hint).toContain(`vault session renew ${session.id}`);
    factory.ssoUsable = true; // the CLI signed in (vault session renew), then asks the daemon
    await reg.renew(back.id);
    expect(back.state).toBe('active');
    expect(factory.last.fetchCalls).toBe(1);
    expect(back.token).toBe(session.token);
  });

  it('a restored session whose sign-in still lives (or can be refreshed) stays active', async () => {
    const { w, record } = await recorded();
    const { reg, factory } = w.registry();
    factory.ssoUsable = true;
    const back = await reg.restore(record, 20_123);
    await reg.verifyRestored(back);
    expect(back.state).toBe('active');
  });

  it('when its MFA session ended and nothing is servable: the first fetch says needs-mfa', async () => {
    const { w, record } = await recorded();
    w.clock.advance(9 * HOUR); // past the role credentials and the (fake) MFA session of the new source
    const { reg, factory } = w.registry();
    const back = await reg.restore(record, 20_123);
    const fake = await (back.source as RestoredSource).source();
    (fake as FakeCredentialSource).failNext(new VaultError('SESSION_NEEDS_MFA', 'the MFA session for account-a has expired'));
    await reg.verifyRestored(back);
    expect(back.state).toBe('needs-mfa');
    expect(factory.last.fetchCalls).toBe(1);
  });

  it('an IMDS session listens on its old port again; when that is taken it is failed, says why, and renew retries it', async () => {
    const { w, session, record } = await recorded('imds');
    const taken = new Set([record.port]);
    const { reg, opened } = w.registry(undefined, { takenPorts: taken });
    const back = await reg.restore(record, 20_123);
    expect(back.state).toBe('failed');
    expect(back.lastError).toMatchObject({ code: 'PORT_IN_USE' });
    expect(back.lastError!.message).toContain(`IMDS port ${record.port}`);
    expect(back.lastError!.message).toContain(`vault session renew ${session.id}`);
    expect(w.log.records().some((r) => r.event === 'restore-port-failed' && r.port === record.port)).toBe(true);
    await expect(reg.renew(back.id)).rejects.toMatchObject({ code: 'DAEMON_UNAVAILABLE' });
    // The record keeps the port its clients use.
    await reg.persist(back);
    expect((await w.store.load()).records[0]!.port).toBe(record.port);
    taken.clear();
    await reg.renew(back.id);
    expect(back.state).toBe('active');
    expect(back.imds!.port).toBe(record.port);
    expect(opened).toEqual([record.port]);
  });

  it('a container session whose port is not the daemon’s any more is failed rather than moved', async () => {
    const { w, record } = await recorded();
    const { reg } = w.registry(undefined, { credentialPort: 20_999 });
    const back = await reg.restore(record, 20_999);
    expect(back.state).toBe('failed');
    expect(back.lastError!.message).toContain('credential port 20123 was taken');
    await expect(reg.renew(back.id)).rejects.toMatchObject({ code: 'DAEMON_UNAVAILABLE' });
  });

  it('RestoredSource creates the real source on first use and again after a failure', async () => {
    const clock = new ManualClock();
    const factory = new FakeSourceFactory({ clock });
    factory.createError = new VaultError('KEYRING_LOCKED', 'the keychain is locked');
    const source = new RestoredSource(factory, { profile: 'account-a' }, { profile: 'account-a', region: 'eu-west-1', mfaExpiration: clock.now() + HOUR });
    expect(source.region).toBe('eu-west-1');
    expect(source.mfaSessionExpiration()).toEqual(new Date(clock.now() + HOUR));
    await expect(source.fetchCredentials()).rejects.toMatchObject({ code: 'KEYRING_LOCKED' });
    await expect(source.fetchCredentials()).resolves.toMatchObject({ accessKeyId: expect.stringMatching(/^ASIA/) });
    expect(factory.requests).toHaveLength(2);
    expect(source.region).toBe('ap-northeast-1');
  });
});

describe('loadForRestore and owners', () => {
  it('drops the sessions of `vault exec --server` processes that have ended', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => keyring, '/state/x');
    const base = { version: 1, token: 'a'.repeat(43), profile: 'p', kind: 'ecs', lazy: false, createdAt: 1, port: 20_000 } as const;
    await store.save([
      { ...base, id: 'aaaaaaaaaaaa' },
      { ...base, id: 'bbbbbbbbbbbb', owner: { pid: 111 } },
      { ...base, id: 'cccccccccccc', owner: { pid: 222 } },
    ]);
    const loaded = await loadForRestore(store, (owner) => owner.pid === 222);
    expect(loaded.records.map((r) => r.id)).toEqual(['aaaaaaaaaaaa', 'cccccccccccc']);
    expect(loaded.dropped.map((r) => r.id)).toEqual(['bbbbbbbbbbbb']);
  });

  it('tells a live owner from an ended one, a reused pid and a zombie', async () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    const me = ownerInfo(process.pid)!;
    expect(isOwnerAlive(me)).toBe(true);
    const ended = spawnSync(process.execPath, ['-e', '0']).pid!;
    expect(isProcessAlive(ended)).toBe(false);
    expect(isOwnerAlive({ pid: ended })).toBe(false);
    if (existsSync('/proc/self/stat')) {
      expect(me.startTime).toMatch(/^\d+$/);
      expect(isOwnerAlive({ pid: process.pid, startTime: `${me.startTime}0` })).toBe(false);
      // A child whose parent never reaps it (sh exec's into sleep): a zombie, which a killed daemon can be.
      const sh = spawn('/bin/sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
      cleanups.push(() => void sh.kill('SIGKILL'));
      const zombie = Number.parseInt(await new Promise<string>((resolve) => sh.stdout.once('data', (d: Buffer) => resolve(d.toString()))), 10);
      for (let i = 0; i < 100 && !readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z'); i += 1) await new Promise((r) => setTimeout(r, 20));
      expect(isProcessAlive(zombie)).toBe(false);
    }
  });

  it('the credential port is the one most container sessions name', () => {
    const r = (port: number, kind: 'ecs' | 'imds' = 'ecs') => ({ port, kind }) as SessionRecord;
    expect(credentialPortOf([])).toBeUndefined();
    expect(credentialPortOf([r(1, 'imds')])).toBeUndefined();
    expect(credentialPortOf([r(20_000), r(21_000, 'imds'), r(20_000), r(22_000)])).toBe(20_000);
  });

  it('picks ports below the ephemeral range, where no outgoing connection can take them while the daemon is down', () => {
    const [low] = ephemeralRange();
    for (const random of [0, 0.5, 0.999999]) {
      const port = candidatePort(() => random)!;
      expect(port).toBeGreaterThanOrEqual(10_000);
      expect(port).toBeLessThan(low);
    }
  });
});

/** Closes listeners and timers the way `kill -9` would: no cleanup, files and records left behind. */
async function crash(daemon: Daemon): Promise<void> {
  await daemon.registry.release();
  await Promise.allSettled([daemon.server.close(), daemon.control.close()]);
}

function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a daemon started after a crash', () => {
  function setup(keyring: Keyring = new MemoryKeyring()) {
    const dir = tempStateDir();
    cleanups.push(dir.cleanup);
    const clock = new ManualClock(Date.now());
    const store = new KeyringSessionStore(async () => keyring, dir.stateDir);
    const start = async (extra: Partial<StartDaemonOptions> = {}) => {
      const factory = new MfaAwareFactory({ clock, roleDurationMs: HOUR, mfaDurationMs: 8 * HOUR });
      const log = captureLogger();
      const daemon = await startDaemon({
        stateDir: dir.stateDir,
        sourceFactory: factory,
        clock,
        scheduler: new ManualScheduler(clock),
        random: () => 0.5,
        logger: log.logger,
        handleSignals: false,
        peerPids: false,
        sessionStore: store,
        ...extra,
      });
      cleanups.push(() => daemon.stop());
      return { daemon, factory, log, client: new DaemonClient({ stateDir: dir.stateDir, timeoutMs: 5_000 }) };
    };
    return { dir, clock, store, keyring, start };
  }

  it('restores every session on the same ports: the old URI and token get the same credentials, with no STS call', async () => {
    const t = setup();
    const first = await t.start();
    const ecs = await first.client.createSession({ profile: 'account-a', kind: 'ecs' });
    t.clock.advance(1_000);
    const imds = await first.client.createSession({ profile: 'account-b', kind: 'imds' });
    const before = JSON.parse((await get(first.daemon.port, `/creds/${ecs.id}`, { host: `127.0.0.1:${first.daemon.port}`, authorization: ecs.token })).body);
    const imdsPort = Number(new URL(imds.imdsEndpoint!).port);
    const imdsToken = () =>
      new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: imdsPort, path: '/latest/api/token', method: 'PUT', headers: { host: `127.0.0.1:${imdsPort}`, 'x-aws-ec2-metadata-token-ttl-seconds': '21600' }, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks).toString()));
        });
        req.on('error', reject);
        req.end();
      });
    const heldToken = await imdsToken();
    const imdsCreds = (token: string) => get(imdsPort, '/latest/meta-data/iam/security-credentials/', { host: `127.0.0.1:${imdsPort}`, 'x-aws-ec2-metadata-token': token });
    expect((await imdsCreds(heldToken)).status).toBe(200);
    const port = first.daemon.port;
    expect(port).toBeLessThan(ephemeralRange()[0]);
    await crash(first.daemon);
    expect(existsSync(first.daemon.paths.pidFile)).toBe(true);

    const second = await t.start();
    expect(second.daemon.port).toBe(port);
    expect(second.daemon.restore).toMatchObject({ restored: [ecs.id, imds.id], failed: [], dropped: [], skipped: [] });
    const after = await get(port, `/creds/${ecs.id}`, { host: `127.0.0.1:${port}`, authorization: ecs.token });
    expect(after.status).toBe(200);
    expect(JSON.parse(after.body).AccessKeyId).toBe(before.AccessKeyId);
    const listed = await second.client.listSessions();
    expect(listed.map((s) => [s.id, s.uri, s.imdsEndpoint, s.state])).toEqual([
      [ecs.id, ecs.uri, undefined, 'active'],
      [imds.id, expect.any(String), imds.imdsEndpoint, 'active'],
    ]);
    expect((await second.client.sessionEnv(ecs.id)).token).toBe(ecs.token);
    // The IMDSv2 token a client got before the crash still works, and so does a new one; the
    // token of another session does not.
    expect((await imdsCreds(heldToken)).status).toBe(200);
    expect((await imdsCreds(await imdsToken())).status).toBe(200);
    const other = new ImdsTokens({ now: () => Date.now() }, imdsTokenKey(ecs.token)).issue(60);
    expect((await imdsCreds(other)).status).toBe(401);
    await second.daemon.restoreChecked;
    expect(second.factory.sources.every((s) => s.fetchCalls === 0 && s.renewCodes.length === 0)).toBe(true);
    expect(second.factory.requests.every((r) => r.mfaToken === undefined)).toBe(true);
    expect(second.log.records().some((r) => r.event === 'sessions-restored')).toBe(true);
    expect(second.log.lines.join('\n')).not.toContain(ecs.token);
    expect(JSON.parse(readFileSync(second.daemon.paths.stateFile, 'utf8'))).toMatchObject({ pid: process.pid, port });
  });

  it('when the credential port was taken meanwhile: listens elsewhere, and the container sessions are failed, saying why', async () => {
    const t = setup();
    const first = await t.start();
    const ecs = await first.client.createSession({ profile: 'account-a', kind: 'ecs' });
    t.clock.advance(1_000);
    const imds = await first.client.createSession({ profile: 'account-a', kind: 'imds' });
    const port = first.daemon.port;
    await crash(first.daemon);
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => squatter.close(() => resolve())));

    const second = await t.start();
    expect(second.daemon.port).not.toBe(port);
    expect(second.daemon.restore).toMatchObject({ restored: [ecs.id, imds.id], failed: [ecs.id] });
    const summary = await second.client.getSession(ecs.id);
    expect(summary.state).toBe('failed');
    expect(summary.lastError!.message).toContain(`credential port ${port} was taken`);
    expect((await second.client.getSession(imds.id)).state).toBe('active');
    expect(second.log.records().some((r) => r.event === 'restore-port-taken' && r.port === port)).toBe(true);
    // Its record keeps the old port: a later start with the port free brings it back.
    await crash(second.daemon);
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    const third = await t.start();
    expect(third.daemon.port).toBe(port);
    expect((await third.client.getSession(ecs.id)).state).toBe('active');
  });

  it('a clean stop forgets the sessions', async () => {
    const t = setup();
    const first = await t.start();
    await first.client.createSession({ profile: 'account-a', kind: 'ecs' });
    await first.daemon.stop();
    expect((await t.store.load()).records).toEqual([]);
    const second = await t.start();
    expect(second.daemon.restore!.restored).toEqual([]);
  });

  it('a keyring it cannot read: starts without the sessions, says why, and keeps the records for a later start', async () => {
    const inner = new MemoryKeyring();
    let locked = false;
    const keyring: Keyring = {
      backend: 'memory',
      keys: () => inner.keys(),
      get: async (k) => {
        if (locked) throw new VaultError('KEYRING_LOCKED', 'the keychain is locked');
        return inner.get(k);
      },
      set: (k, v) => inner.set(k, v),
      remove: (k) => inner.remove(k),
    };
    const t = setup(keyring);
    const first = await t.start();
    const ecs = await first.client.createSession({ profile: 'account-a', kind: 'ecs' });
    await crash(first.daemon);
    locked = true;
    const second = await t.start();
    expect(second.daemon.restore).toMatchObject({ restored: [], error: 'the keychain is locked' });
    expect(second.log.records().some((r) => r.event === 'restore-failed' && r.code === 'KEYRING_LOCKED')).toBe(true);
    await crash(second.daemon);
    locked = false;
    const third = await t.start();
    expect(third.daemon.restore!.restored).toEqual([ecs.id]);
  });

  it('drops the session of an `exec --server` that ended while the daemon was down', async () => {
    const t = setup();
    const first = await t.start();
    const mine = await first.client.createSession({ profile: 'account-a', kind: 'ecs', ownerPid: process.pid });
    t.clock.advance(1_000);
    const owner = spawn('sleep', ['30'], { stdio: 'ignore' });
    const theirs = await first.client.createSession({ profile: 'account-a', kind: 'ecs', ownerPid: owner.pid! });
    await crash(first.daemon);
    await new Promise((resolve) => {
      owner.once('exit', resolve);
      owner.kill('SIGKILL');
    });
    const second = await t.start();
    expect(second.daemon.restore).toMatchObject({ restored: [mine.id], dropped: [theirs.id] });
    await second.daemon.restoreChecked;
    expect((await t.store.load()).records.map((r) => r.id)).toEqual([mine.id]);
  });
});
