import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { connect, Server } from 'node:net';
import { Agent, request } from 'node:http';
import { basename, dirname } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '@vault/core';
import { DaemonClient } from '../daemonLife/daemonClient.js';
import { daemonPaths } from '../paths.js';
import { OWNER_CHECK_MS } from '../sessions/orphanReaping.js';
import { startDaemon, type Daemon } from './startDaemon.js';
import { Cleanups, FakeSourceFactory, startTestDaemon } from '@vault/stand-ins/server';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());
const track = <T extends { close(): Promise<void> }>(fixture: T): T => cleanups.track(fixture);
const tempDir = () => cleanups.tempStateDir();

function factory() {
  return new FakeSourceFactory({ clock: new ManualClock(Date.now()), mfaDurationMs: 8 * 3_600_000 });
}

/** A raw HTTP exchange on the credential port, with full control over the headers. */
function rawHttp(port: number, lines: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(lines));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString()));
    socket.on('error', reject);
  });
}

function httpGet(
  port: number,
  path: string,
  headers: Record<string, string>,
  agent: Agent | false = false,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('startDaemon', () => {
  it('creates the state dir 0700, pid file and daemon.json 0600 (no secrets), listens on 127.0.0.1', async () => {
    const f = track(await startTestDaemon());
    const { paths } = f.daemon;
    expect(statSync(paths.stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(paths.pidFile).mode & 0o777).toBe(0o600);
    expect(statSync(paths.stateFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(paths.pidFile, 'utf8').trim()).toBe(String(process.pid));
    const created = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const state = JSON.parse(readFileSync(paths.stateFile, 'utf8'));
    expect(state).toMatchObject({ pid: process.pid, port: f.daemon.port, socket: paths.socket });
    expect(readFileSync(paths.stateFile, 'utf8')).not.toContain(created.token);
    const address = f.daemon.server.server.address();
    expect(address).toMatchObject({ address: '127.0.0.1' });
  });

  it('tightens a state dir that exists with looser permissions', async () => {
    const dir = tempDir();
    mkdirSync(dir.stateDir, { mode: 0o755 });
    const daemon = await startDaemon({ stateDir: dir.stateDir, sourceFactory: factory(), handleSignals: false, peerPids: false });
    cleanups.push(() => daemon.stop());
    expect(statSync(dir.stateDir).mode & 0o777).toBe(0o700);
  });

  it('binds the control socket and the relay socket 0600 inside a 0700 directory even under umask 0: never connectable by others', async () => {
    // The mode is read in the same tick as the bind, before anything could chmod it afterwards:
    // what another uid could connect to in the window between bind() and a later chmod.
    const seen: Array<{ name: string; socket: string; dir: string }> = [];
    const listen = Server.prototype.listen;
    const spy = vi.spyOn(Server.prototype, 'listen').mockImplementation(function (this: Server, ...args: unknown[]) {
      const result = (listen as (...a: unknown[]) => Server).apply(this, args);
      const path = (args[0] as { path?: unknown } | undefined)?.path;
      if (typeof path === 'string') seen.push({ name: basename(path), socket: (statSync(path).mode & 0o777).toString(8), dir: (statSync(dirname(path)).mode & 0o777).toString(8) });
      return result;
    });
    const dir = tempDir();
    const umask = process.umask(0);
    try {
      const daemon = await startDaemon({ stateDir: dir.stateDir, sourceFactory: factory(), handleSignals: false, peerPids: false });
      cleanups.push(() => daemon.stop());
    } finally {
      process.umask(umask);
      spy.mockRestore();
    }
    expect(seen).toEqual([
      { name: 'control.sock', socket: '600', dir: '700' },
      { name: 'relay.sock', socket: '600', dir: '700' },
    ]);
  });

  // Needs root to become another uid; CI runs as root. This is what stands in for a peer-uid check
  // on the socket (Node has no SO_PEERCRED): the kernel refuses another uid's connect().
  it.runIf(process.getuid?.() === 0)('refuses a connect() to the control socket from another uid (EACCES), even with the socket made 0666', async () => {
    const f = track(await startTestDaemon());
    const tryConnect = () =>
      spawnSync(process.execPath, ['-e', `require('net').connect(${JSON.stringify(f.daemon.paths.socket)}).on('connect', () => { console.log('connected'); process.exit(0) }).on('error', (e) => { console.log(e.code); process.exit(0) })`], {
        uid: 65_534,
        gid: 65_534,
        encoding: 'utf8',
      }).stdout.trim();
    expect(tryConnect()).toBe('EACCES');
    // The 0700 directory alone keeps it out: the socket's own mode is the second lock.
    chmodSync(f.daemon.paths.socket, 0o666);
    expect(tryConnect()).toBe('EACCES');
  });

  it('refuses to start when a live daemon owns the state dir', async () => {
    const f = track(await startTestDaemon());
    await expect(startDaemon({ stateDir: f.stateDir, sourceFactory: factory(), handleSignals: false })).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining('already running'),
    });
    expect(await f.client.isRunning()).toBe(true);
    expect(existsSync(f.daemon.paths.socket)).toBe(true);
  });

  it('cleans up a stale pid file (process gone) and a stale socket left by a crash', async () => {
    const dir = tempDir();
    const paths = daemonPaths(dir.stateDir);
    mkdirSync(dir.stateDir, { mode: 0o700 });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(paths.pidFile, `${dead}\n`, { mode: 0o600 });
    // A socket file nobody listens on any more: its owner was killed with SIGKILL.
    const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(paths.socket)}, () => console.log('up'))`]);
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(existsSync(paths.socket)).toBe(true);
    expect(await new DaemonClient({ stateDir: dir.stateDir }).isRunning()).toBe(false);

    const daemon = await startDaemon({ stateDir: dir.stateDir, sourceFactory: factory(), handleSignals: false, peerPids: false });
    cleanups.push(() => daemon.stop());
    expect(readFileSync(paths.pidFile, 'utf8').trim()).toBe(String(process.pid));
    expect(await new DaemonClient({ stateDir: dir.stateDir }).isRunning()).toBe(true);
  });

  it('treats a live pid whose socket does not answer as stale once the startup grace is over', async () => {
    const dir = tempDir();
    const paths = daemonPaths(dir.stateDir);
    mkdirSync(dir.stateDir, { mode: 0o700 });
    writeFileSync(paths.pidFile, `${process.ppid}\n`, { mode: 0o600 });
    // Fresh pid file: a daemon that is still starting.
    await expect(startDaemon({ stateDir: dir.stateDir, sourceFactory: factory(), handleSignals: false })).rejects.toMatchObject({
      message: expect.stringContaining('starting'),
    });
    const old = new Date(Date.now() - 60_000);
    utimesSync(paths.pidFile, old, old);
    const daemon = await startDaemon({ stateDir: dir.stateDir, sourceFactory: factory(), handleSignals: false, peerPids: false });
    cleanups.push(() => daemon.stop());
    expect(readFileSync(paths.pidFile, 'utf8').trim()).toBe(String(process.pid));
  });

  it('stops cleanly on SIGTERM: listeners closed, socket, pid file and daemon.json removed', async () => {
    const before = process.listenerCount('SIGTERM');
    const f = await startTestDaemon({ handleSignals: true });
    cleanups.push(f.close);
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    const port = f.daemon.port;
    await f.client.createSession({ profile: 'account-a', kind: 'imds' });
    process.emit('SIGTERM', 'SIGTERM');
    await f.daemon.closed;
    expect(existsSync(f.daemon.paths.socket)).toBe(false);
    expect(existsSync(f.daemon.paths.pidFile)).toBe(false);
    expect(existsSync(f.daemon.paths.stateFile)).toBe(false);
    expect(process.listenerCount('SIGTERM')).toBe(before);
    await expect(httpGet(port, '/creds/x', { host: `127.0.0.1:${port}` })).rejects.toThrow();
  });

  it('stops cleanly on SIGINT too', async () => {
    const f = await startTestDaemon({ handleSignals: true });
    cleanups.push(f.close);
    process.emit('SIGINT', 'SIGINT');
    await f.daemon.closed;
    expect(existsSync(f.daemon.paths.socket)).toBe(false);
  });

  it('logs to daemon.log (0600) as pino JSON, with audit lines and no secrets', async () => {
    const f = await startTestDaemon({ captureLog: false });
    cleanups.push(f.close);
    const created = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const res = await httpGet(f.daemon.port, `/creds/${created.id}`, { host: `127.0.0.1:${f.daemon.port}`, authorization: created.token });
    expect(res.status).toBe(200);
    await httpGet(f.daemon.port, `/creds/${created.id}`, { host: `127.0.0.1:${f.daemon.port}`, authorization: 'wrong' });
    await f.client.stopSession(created.id);
    await f.daemon.stop();
    const logFile = f.daemon.paths.logFile;
    expect(statSync(logFile).mode & 0o777).toBe(0o600);
    const text = readFileSync(logFile, 'utf8');
    const records = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => r.audit).filter(Boolean)).toEqual(['session-start', 'credentials-served', 'session-stop']);
    const body = JSON.parse(res.body);
    for (const secret of [created.token, body.SecretAccessKey, body.Token]) expect(text).not.toContain(secret);
  });

  it('stops a `vault exec --server` session within ownerCheckMs once its owner has died without stopping it', async () => {
    expect(OWNER_CHECK_MS).toBe(10_000);
    const f = await startTestDaemon({ captureLog: false, ownerCheckMs: 50 });
    cleanups.push(f.close);
    const owner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
    await new Promise((resolve) => owner.once('spawn', resolve));
    const owned = await f.client.createSession({ profile: 'account-a', kind: 'ecs', ownerPid: owner.pid! });
    const free = await f.client.createSession({ profile: 'account-b', kind: 'ecs' });
    const mine = await f.client.createSession({ profile: 'account-b', kind: 'ecs', ownerPid: process.pid });
    await new Promise((resolve) => setTimeout(resolve, 200)); // four checks
    expect(f.daemon.registry.size).toBe(3); // every owner alive: nothing stopped
    owner.kill('SIGKILL');
    await new Promise((resolve) => owner.once('exit', resolve));
    for (let i = 0; i < 100 && f.daemon.registry.size > 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await f.client.listSessions()).map((s) => s.id).sort()).toEqual([free.id, mine.id].sort());
    const gone = await httpGet(f.daemon.port, `/creds/${owned.id}`, { host: `127.0.0.1:${f.daemon.port}`, authorization: owned.token });
    expect(gone.status).toBe(403);
    await f.daemon.stop();
    const records = readFileSync(f.daemon.paths.logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.find((r) => r.audit === 'session-stop' && r.session === owned.id)).toMatchObject({ reason: 'owner-ended', ownerPid: owner.pid });
    expect(records.some((r) => r.event === 'sessions-orphaned')).toBe(true);
  });

  it('a stop waits for audit lines whose client-pid lookup is still running: none is lost', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // Like the real resolver: one lookup per connection, however many ask.
    const bySocket = new WeakMap<object, Promise<number>>();
    let lookups = 0;
    const slowPids = {
      lookup: (socket: object) => {
        let found = bySocket.get(socket);
        if (!found) {
          lookups++;
          found = released.then(() => 4242);
          bySocket.set(socket, found);
        }
        return found;
      },
    };
    const f = await startTestDaemon({ captureLog: false, peerPids: slowPids });
    cleanups.push(f.close);
    const created = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const headers = { host: `127.0.0.1:${f.daemon.port}`, authorization: created.token };
    // Three one-shot connections, and five requests over one keep-alive connection.
    for (let i = 0; i < 3; i++) expect((await httpGet(f.daemon.port, `/creds/${created.id}`, headers)).status).toBe(200);
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 5; i++) expect((await httpGet(f.daemon.port, `/creds/${created.id}`, headers, keepAlive)).status).toBe(200);
    keepAlive.destroy();
    expect(lookups).toBe(4);
    const stopped = f.daemon.stop();
    setTimeout(release, 100); // the lookups settle only after the stop has begun
    await stopped;
    const records = readFileSync(f.daemon.paths.logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const served = records.filter((r) => r.audit === 'credentials-served');
    expect(served).toHaveLength(8);
    expect(served.every((r) => r.client.pid === 4242 && typeof r.servedAt === 'string')).toBe(true);
    // Each line says when it was served, in order, not when it was written.
    const servedAt = served.map((r) => Date.parse(r.servedAt));
    expect(servedAt).toEqual([...servedAt].sort((a, b) => a - b));
    expect(served.every((r) => r.time >= Date.parse(r.servedAt))).toBe(true);
    expect(records.at(-1).event).toBe('daemon-stopped');
  });
});

describe('real listener', () => {
  it('bounded header size: oversized headers → 431 JSON', async () => {
    const f = track(await startTestDaemon());
    const port = f.daemon.port;
    const reply = await rawHttp(port, `GET /creds/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`);
    expect(reply).toMatch(/^HTTP\/1\.1 431 /);
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4));
    expect(body.Code).toBe('HEADERS_TOO_LARGE');
  });

  it('bounded header time: headersTimeout and requestTimeout are set on the node server', async () => {
    const f = track(await startTestDaemon());
    expect(f.daemon.server.server.headersTimeout).toBe(5_000);
    expect(f.daemon.server.server.requestTimeout).toBe(10_000);
  });

  it('a wrong Host on the wire is refused; the right one is served', async () => {
    const f = track(await startTestDaemon());
    const created = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const port = f.daemon.port;
    const bad = await httpGet(port, `/creds/${created.id}`, { host: `evil.example:${port}`, authorization: created.token });
    expect(bad.status).toBe(403);
    const good = await httpGet(port, `/creds/${created.id}`, { authorization: created.token });
    expect(good.status).toBe(200);
  });

  it('audit lines carry the client address, port and pid (Linux /proc)', async () => {
    if (process.platform !== 'linux') return;
    const f = track(await startTestDaemon({ peerPids: true }));
    const created = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    // A keep-alive client, as the SDKs are: a one-shot client (curl) may be gone from /proc
    // before the lookup reads it, and is then logged without a pid.
    const agent = new Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    const res = await httpGet(f.daemon.port, `/creds/${created.id}`, { authorization: created.token }, agent);
    expect(res.status).toBe(200);
    await vi.waitFor(() => {
      const line = f.log!.records().find((r) => r.audit === 'credentials-served');
      expect(line).toBeDefined();
      expect(line!.client).toMatchObject({ address: '127.0.0.1', port: expect.any(Number), pid: process.pid });
      // The pid comes from a scan of /proc, which takes longer with the rest of the suite running
      // beside it: 10 s is a bound on a hang, not a timing requirement.
    }, { timeout: 10_000 });
  });

  it('the JS SDK reads the container endpoint: fromHttp and fromContainerMetadata', async () => {
    const f = track(await startTestDaemon());
    const created = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const { fromHttp, fromContainerMetadata } = await import('@aws-sdk/credential-providers');
    const viaHttp = await fromHttp({ awsContainerCredentialsFullUri: created.uri, awsContainerAuthorizationToken: created.token })();
    expect(viaHttp.accessKeyId).toBe('ASIAFAKE000000000001');
    expect(viaHttp.expiration).toBeInstanceOf(Date);
    const saved = { ...process.env };
    try {
      process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = created.env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
      process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN = created.env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
      const viaContainer = await fromContainerMetadata({ timeout: 2_000 })();
      expect(viaContainer.accessKeyId).toBe('ASIAFAKE000000000001');
      expect(viaContainer.sessionToken).toBe(JSON.parse((await httpGet(f.daemon.port, `/creds/${created.id}`, { authorization: created.token })).body).Token);
    } finally {
      process.env = saved;
    }
  });

  it('the JS SDK reads the IMDS endpoint: fromInstanceMetadata (IMDSv2)', async () => {
    const f = track(await startTestDaemon());
    const created = await f.client.createSession({ profile: 'account-a', kind: 'imds' });
    const { fromInstanceMetadata } = await import('@aws-sdk/credential-providers');
    const saved = { ...process.env };
    try {
      process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = created.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      process.env.AWS_EC2_METADATA_V1_DISABLED = 'true';
      const creds = await fromInstanceMetadata({ timeout: 2_000, maxRetries: 0 })();
      expect(creds.accessKeyId).toBe('ASIAFAKE000000000001');
    } finally {
      process.env = saved;
    }
    expect(f.daemon.registry.get(created.id)!.requestsServed).toBe(1);
  });
});
