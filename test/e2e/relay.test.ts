import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialKeyring, ManualClock, MemoryKeyring, SdkStsGateway } from '@vault/core';
import { startStsStandIn, type StsStandIn } from '@vault/stand-ins';
import { coreSourceFactory, DaemonClient, ManualScheduler, startDaemon, type CreatedSession, type Daemon } from '@vault/server';
import { captureLogger, tempStateDir } from '@vault/stand-ins/server';
import { VAULT_BIN } from '../support/cli.js';
import { cmdlineOf, environOf, findLeaks } from '../support/leaks.js';
import { MFA_SERIAL, ROLE_A, readmeConfig } from '../support/world.js';

/**
 * Containers without Docker: two network namespaces stand in. "net" plays the container network
 * and holds `vault relay` at 169.254.170.2 (the ECS address SDKs accept over plain http); "app"
 * plays an app container at 169.254.170.3, joined to it by a veth pair. The daemon runs in this
 * process, in the host's namespace, on 127.0.0.1 and its Unix sockets; the relay reaches it only
 * through relay.sock (a Unix socket: the file system is shared, the network is not). Real clients
 * in "app" — botocore, the JS SDK's default chain, the AWS CLI — get only
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN, then ask the STS
 * stand-in who they are through a pipe to it at 127.0.0.1 of their own namespace. One ManualClock
 * and scheduler for the daemon and the stand-in: refreshes are stepped, nothing sleeps for time.
 * Needs root (CI runs as root); the namespaces have unique names and are removed in afterAll.
 */
const MINUTE = 60_000;
const RELAY = '169.254.170.2';
const APP = '169.254.170.3';
const tag = randomBytes(3).toString('hex');
const NET_NS = `vault-relay-net-${tag}`;
const APP_NS = `vault-relay-app-${tag}`;
const NET_IF = `vrn${tag}`;
const APP_IF = `vra${tag}`;
const TIMEOUT = 60_000;
const SUPPORT = fileURLToPath(new URL('../support/', import.meta.url));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

const captured: Record<string, string> = {};
let runs = 0;

/** `capture`: kept for the leak scan (everything but the raw credential requests this test makes on purpose). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH }, capture = true): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const n = ++runs;
      if (capture) captured[`run ${n} (${args.slice(0, 4).join(' ')}) stdout`] = stdout;
      if (capture) captured[`run ${n} stderr`] = stderr;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ip(...args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/** Runs in a namespace; `inNs(APP_NS, ...)`. */
function inNs(ns: string, command: string, args: string[], env?: NodeJS.ProcessEnv, capture = true): Promise<Ran> {
  return run('ip', ['netns', 'exec', ns, command, ...args], env, capture);
}

/** A long-running process in a namespace, resolved once it printed a line matching `ready` on the named stream. */
function startInNs(ns: string, command: string, args: string[], ready: RegExp, stream: 'stdout' | 'stderr'): Promise<{ child: ChildProcess; line: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const name = `${ns} ${args.slice(0, 3).join(' ')} #${++runs}`;
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      captured[`${name} stdout`] = out;
      check();
    });
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      captured[`${name} stderr`] = err;
      check();
    });
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${err}`)), 30_000);
    function check() {
      const line = (stream === 'stdout' ? out : err).split('\n').find((l) => ready.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve({ child, line, output: () => out + err });
      }
    }
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}): ${err}`)));
  });
}

/** A request from the app namespace; the token goes through the environment, never argv. */
async function fromApp(spec: { url: string; method?: string; headers?: Record<string, string>; body?: string }, token?: string): Promise<{ status?: number; body?: string; error?: string }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  if (token !== undefined) env.NS_REQUEST_AUTHORIZATION = token;
  const r = await inNs(APP_NS, process.execPath, [join(SUPPORT, 'nsRequest.mjs'), JSON.stringify(spec)], env, false);
  if (r.code !== 0) throw new Error(`nsRequest failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { status?: number; body?: string; error?: string };
}

/** A request on a Unix socket from this process (the host's namespace). */
function onSocket(socketPath: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method, path, headers: { host: 'relay', ...headers }, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

let clock: ManualClock;
let scheduler: ManualScheduler;
let sts: StsStandIn;
let daemon: Daemon;
let client: DaemonClient;
let log: ReturnType<typeof captureLogger>;
let home: string;
let emptyHome: string;
let stsBridge: Server;
let stsPortInApp: number;
let relay: Awaited<ReturnType<typeof startInNs>>;
const children: ChildProcess[] = [];
const secrets: string[] = [];
let dir: ReturnType<typeof tempStateDir>;
let session: CreatedSession;
const namespacesMade: string[] = [];

/** Only the two variables a container gets, and what any program needs to start (PATH, an empty HOME). */
function containerEnv(s: CreatedSession): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: emptyHome,
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: `/creds/${s.id}`,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: s.token,
  };
}

const stsInApp = () => `http://127.0.0.1:${stsPortInApp}`;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the relay test makes network namespaces (ip netns add) and needs root, as CI has');
  clock = new ManualClock(Date.now());
  scheduler = new ManualScheduler(clock);
  sts = await startStsStandIn({ clock, checkRequestTime: false });
  const user = sts.addUser({ arn: 'arn:aws:iam::111111111111:user/central-user' });
  secrets.push(user.secretAccessKey);
  sts.addMfaDevice(MFA_SERIAL, '123456');
  sts.addRole({ arn: ROLE_A, requireMfa: true });
  home = mkdtempSync(join(tmpdir(), 'vault-relay-'));
  emptyHome = join(home, 'container-home');
  mkdirSync(emptyHome);
  const configFile = join(home, 'config');
  writeFileSync(configFile, readmeConfig(), { mode: 0o600 });
  const keyring = new MemoryKeyring();
  await new CredentialKeyring(keyring).set('central-account', user);
  dir = tempStateDir();
  log = captureLogger();
  daemon = await startDaemon({
    stateDir: dir.stateDir,
    sourceFactory: coreSourceFactory({
      env: { AWS_CONFIG_FILE: configFile, AWS_ENDPOINT_URL_STS: sts.url },
      homeDir: home,
      keyring: async () => keyring,
      sts: new SdkStsGateway({ maxAttempts: 1, requestTimeoutMs: 5_000 }),
      clock,
    }),
    clock,
    scheduler,
    random: () => 0.5,
    logger: log.logger,
    handleSignals: false,
    peerPids: false,
  });
  client = new DaemonClient({ stateDir: dir.stateDir, timeoutMs: 10_000 });
  session = await client.createSession({ profile: 'account-a', kind: 'ecs', mfaToken: '123456' });
  secrets.push(session.token);

  // The two namespaces and the veth pair between them (removed with the namespaces).
  for (const ns of [NET_NS, APP_NS]) {
    await ip('netns', 'add', ns);
    namespacesMade.push(ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  await ip('link', 'add', NET_IF, 'netns', NET_NS, 'type', 'veth', 'peer', 'name', APP_IF, 'netns', APP_NS);
  await ip('-n', NET_NS, 'addr', 'add', `${RELAY}/24`, 'dev', NET_IF);
  await ip('-n', APP_NS, 'addr', 'add', `${APP}/24`, 'dev', APP_IF);
  await ip('-n', NET_NS, 'link', 'set', NET_IF, 'up');
  await ip('-n', APP_NS, 'link', 'set', APP_IF, 'up');

  // The STS stand-in, reachable in "app" at its own 127.0.0.1 through a Unix socket.
  const stsSocket = join(home, 'sts.sock');
  const stsPort = Number(new URL(sts.url).port);
  stsBridge = createServer((c) => {
    const upstream = connect({ host: '127.0.0.1', port: stsPort });
    c.pipe(upstream).pipe(c);
    c.on('error', () => upstream.destroy());
    upstream.on('error', () => c.destroy());
  });
  await new Promise<void>((resolve) => stsBridge.listen(stsSocket, resolve));
  const bridge = await startInNs(APP_NS, process.execPath, [join(SUPPORT, 'tcpToUnix.mjs'), stsSocket], /"port"/, 'stdout');
  children.push(bridge.child);
  stsPortInApp = (JSON.parse(bridge.line) as { port: number }).port;

  relay = await startInNs(NET_NS, process.execPath, [VAULT_BIN, 'relay', '--socket', daemon.paths.relaySocket], /vault relay: listening/, 'stderr');
  children.push(relay.child);
}, 120_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((resolve) => c.once('exit', resolve)))));
  // Deleting a namespace deletes the veth end in it, and so the pair.
  for (const ns of namespacesMade) await run('ip', ['netns', 'del', ns]);
  await new Promise((resolve) => stsBridge?.close(resolve));
  await daemon?.stop();
  await sts?.close();
  if (home) rmSync(home, { recursive: true, force: true });
  dir?.cleanup();
  const left = await run('ip', ['netns', 'list']);
  expect(left.stdout).not.toContain(tag);
  const links = await run('ip', ['link', 'show']);
  expect(links.stdout).not.toContain(tag);
}, 60_000);

const ASSUMED_A = /^arn:aws:sts::222222222222:assumed-role\/account-a-assume-role\//;

describe('vault relay: a session in a container network, through relay.sock (network namespaces)', () => {
  it('botocore in the app namespace, with only the relative URI and the token, gets the role through the relay; the audit line says it came through the relay', async () => {
    const r = await inNs(APP_NS, '/usr/bin/python3', [join(SUPPORT, 'botocoreClient.py'), stsInApp()], containerEnv(session));
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { arn: string; method: string };
    expect(out.arn).toMatch(ASSUMED_A);
    expect(out.method).toBe('container-role');
    const served = log.records().filter((l) => l.audit === 'credentials-served' && l.session === session.id);
    expect(served.length).toBeGreaterThan(0);
    expect(served.every((l) => l.route === 'ecs-relay')).toBe(true);
    expect(served[0]!.client).toEqual({ address: `relay:${APP}` });
  }, TIMEOUT);

  it("the JS SDK v3 default chain in the app namespace gets the role's ARN through the relay", async () => {
    const r = await inNs(APP_NS, process.execPath, [join(SUPPORT, 'jsClient.mjs'), 'fromNodeProviderChain', stsInApp()], containerEnv(session));
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { arn: string }).arn).toMatch(ASSUMED_A);
  }, TIMEOUT);

  it("the AWS CLI (/usr/bin/aws sts get-caller-identity) in the app namespace gets the role's ARN through the relay", async () => {
    const r = await inNs(APP_NS, '/usr/bin/aws', ['sts', 'get-caller-identity', '--endpoint-url', stsInApp(), '--region', 'ap-northeast-1', '--output', 'json'], containerEnv(session));
    expect(r.stderr).toBe('');
    expect((JSON.parse(r.stdout) as { Arn: string }).Arn).toMatch(ASSUMED_A);
  }, TIMEOUT);

  it('a wrong or missing token gets 403 ACCESS_DENIED and no credential; botocore with a wrong token gets none', async () => {
    const url = `http://${RELAY}/creds/${session.id}`;
    for (const token of [`${session.token.slice(0, -1)}x`, undefined]) {
      const r = await fromApp({ url }, token);
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body!)).toMatchObject({ Code: 'ACCESS_DENIED' });
      expect(r.body).not.toMatch(/AccessKeyId|SecretAccessKey/);
    }
    const wrong = await inNs(APP_NS, '/usr/bin/python3', [join(SUPPORT, 'botocoreClient.py'), stsInApp()], { ...containerEnv(session), AWS_CONTAINER_AUTHORIZATION_TOKEN: 'not-the-token' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).not.toMatch(ASSUMED_A);
  }, TIMEOUT);

  it('through the relay: a body, a foreign Host, another path or method each get one JSON refusal and nothing is served', async () => {
    const base = `http://${RELAY}`;
    const cases: Array<[Parameters<typeof fromApp>[0], number, string]> = [
      [{ url: `${base}/creds/${session.id}`, method: 'GET', headers: { 'content-type': 'text/plain' }, body: 'x' }, 400, 'BODY_NOT_ALLOWED'],
      [{ url: `${base}/creds/${session.id}`, headers: { host: 'attacker.example' } }, 403, 'HOST_NOT_ALLOWED'],
      [{ url: `${base}/creds/${session.id}`, headers: { origin: 'http://attacker.example' } }, 403, 'ORIGIN_NOT_ALLOWED'],
      [{ url: `${base}/creds/${session.id}`, method: 'POST' }, 405, 'METHOD_NOT_ALLOWED'],
      [{ url: `${base}/latest/meta-data/` }, 404, 'NOT_FOUND'],
      [{ url: `${base}/status` }, 404, 'NOT_FOUND'],
      [{ url: `${base}/sessions/${session.id}/env` }, 404, 'NOT_FOUND'],
    ];
    const before = log.records().filter((l) => l.audit === 'credentials-served').length;
    for (const [spec, status, code] of cases) {
      const r = await fromApp(spec, session.token);
      expect({ spec, status: r.status }).toEqual({ spec, status });
      expect(JSON.parse(r.body!)).toEqual({ Code: code, Message: expect.any(String) });
    }
    expect(log.records().filter((l) => l.audit === 'credentials-served').length).toBe(before);
  }, TIMEOUT);

  it('the relay socket never answers a control request (status, sessions, env, credentials, shutdown), even with the token', async () => {
    const auth = { authorization: session.token };
    const requests: Array<[string, string, string?]> = [
      ['GET', '/status'],
      ['GET', '/sessions'],
      ['POST', '/sessions', JSON.stringify({ profile: 'account-a', kind: 'ecs' })],
      ['DELETE', '/sessions'],
      ['GET', `/sessions/${session.id}`],
      ['GET', `/sessions/${session.id}/env`],
      ['DELETE', `/sessions/${session.id}`],
      ['POST', `/sessions/${session.id}/renew`, '{}'],
      ['GET', '/sessions/by-profile/account-a/credentials'],
      ['POST', '/shutdown', '{}'],
    ];
    for (const [method, path, body] of requests) {
      const headers = body === undefined ? auth : { ...auth, 'content-type': 'application/json' };
      const r = await onSocket(daemon.paths.relaySocket, method, path, headers, body);
      expect({ method, path, status: r.status }).toEqual({ method, path, status: method === 'GET' ? 404 : 405 });
      expect(r.body).not.toMatch(/AccessKeyId|"pid"|"profile"|"token"/);
    }
    // Nothing was stopped or created.
    expect(await client.status()).toMatchObject({ pid: process.pid, sessions: 1 });
    expect((await client.getSession(session.id)).state).not.toBe('stopped');
  }, TIMEOUT);

  it("the control socket and the daemon's 127.0.0.1 listener are unreachable from the namespaces; a relay pointed at the control socket refuses to start", async () => {
    for (const url of [`http://127.0.0.1:${daemon.port}/creds/${session.id}`, `http://${RELAY}:${daemon.port}/creds/${session.id}`]) {
      const r = await fromApp({ url }, session.token);
      expect(r.error).toMatch(/ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT/);
    }
    const wrong = await inNs(NET_NS, process.execPath, [VAULT_BIN, 'relay', '--socket', daemon.paths.socket, '--listen', `${RELAY}:8080`]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toBe(`vault: ${daemon.paths.socket} is not a vault daemon's relay socket; give the path \`vault server status --format json\` reports as relaySocket (relay.sock in the daemon state directory)\n`);
  }, TIMEOUT);

  it('bad input: a socket path that does not exist, a file that is not a socket, an address already taken — one vault: line each, exit non-zero', async () => {
    const missing = join(home, 'no-such.sock');
    const r1 = await inNs(NET_NS, process.execPath, [VAULT_BIN, 'relay', '--socket', missing]);
    expect([r1.code, r1.stderr.split('\n').filter(Boolean).length]).toEqual([2, 1]);
    expect(r1.stderr).toMatch(new RegExp(`^vault: the relay socket ${missing} does not exist; `));
    const r2 = await inNs(NET_NS, process.execPath, [VAULT_BIN, 'relay', '--socket', join(home, 'config')]);
    expect([r2.code, r2.stderr.split('\n').filter(Boolean).length]).toEqual([2, 1]);
    expect(r2.stderr).toMatch(/^vault: .*config is not a Unix socket; /);
    const r3 = await inNs(NET_NS, process.execPath, [VAULT_BIN, 'relay', '--socket', daemon.paths.relaySocket]);
    expect([r3.code, r3.stderr]).toEqual([2, `vault: ${RELAY}:80 is already in use; stop what listens there, or give --listen another ADDRESS:PORT\n`]);
    // The relay that holds the address still serves.
    expect((await fromApp({ url: `http://${RELAY}/creds/${session.id}` }, session.token)).status).toBe(200);
  }, TIMEOUT);

  it('the session refreshes under the relay on the injected clock; clients never see less than the 15-minute floor', async () => {
    const url = `http://${RELAY}/creds/${session.id}`;
    const seen: string[] = [];
    for (let round = 0; round < 4; round++) {
      const r = await fromApp({ url }, session.token);
      expect(r.status).toBe(200);
      const body = JSON.parse(r.body!) as { AccessKeyId: string; Expiration: string };
      expect(Date.parse(body.Expiration) - clock.now()).toBeGreaterThanOrEqual(15 * MINUTE);
      seen.push(body.AccessKeyId);
      // To the refresh timer (20 minutes before expiry), then until its STS call has been answered.
      const due = scheduler.nextAt();
      expect(due).toBeLessThan(Date.parse(body.Expiration) - 15 * MINUTE);
      const fetches = daemon.registry.get(session.id)!.credentials.fetches;
      await scheduler.advanceTo(due!);
      for (let i = 0; i < 500 && daemon.registry.get(session.id)!.credentials.fetches === fetches; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      while (daemon.registry.get(session.id)!.credentials.refreshing) await new Promise((resolve) => setTimeout(resolve, 10));
      const after = await fromApp({ url }, session.token);
      const next = JSON.parse(after.body!) as { AccessKeyId: string; Expiration: string };
      expect(next.AccessKeyId).not.toBe(body.AccessKeyId);
      expect(Date.parse(next.Expiration) - clock.now()).toBeGreaterThanOrEqual(15 * MINUTE);
    }
    expect(new Set(seen).size).toBe(4);
    const r = await inNs(APP_NS, '/usr/bin/python3', [join(SUPPORT, 'botocoreClient.py'), stsInApp()], containerEnv(session));
    expect((JSON.parse(r.stdout) as { arn: string }).arn).toMatch(ASSUMED_A);
  }, 120_000);

  it('stopping the session makes the next request through the relay fail at once', async () => {
    const url = `http://${RELAY}/creds/${session.id}`;
    expect((await fromApp({ url }, session.token)).status).toBe(200);
    await client.stopSession(session.id);
    const r = await fromApp({ url }, session.token);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body!)).toMatchObject({ Code: 'ACCESS_DENIED' });
    const sdk = await inNs(APP_NS, process.execPath, [join(SUPPORT, 'jsClient.mjs'), 'fromNodeProviderChain', stsInApp()], containerEnv(session));
    expect(sdk.code).not.toBe(0);
    expect(sdk.stdout).not.toMatch(ASSUMED_A);
  }, TIMEOUT);

  it('no secret reaches the relay or its output: arguments, environment, stdout/stderr, the daemon log', () => {
    const texts: Record<string, string> = {
      ...captured,
      'relay output': relay.output(),
      'relay cmdline': cmdlineOf(relay.child.pid),
      'relay environ': environOf(relay.child.pid),
      'daemon log': log.lines.join('\n'),
    };
    // The clients' own stdout/stderr are in `captured`; their environment holds the token on
    // purpose (it is what a container is given), and they have ended.
    expect(findLeaks([...secrets, ...sts.issuedSecrets()], texts, [home])).toEqual([]);
    expect(relay.child.exitCode).toBeNull();
  });

  it('when the daemon stops, the next request gets 502 DAEMON_UNAVAILABLE and the relay ends with one vault: line (its container restarts and mounts the next socket)', async () => {
    const exited = new Promise<number | null>((resolve) => relay.child.once('exit', (code) => resolve(code)));
    await daemon.stop();
    const r = await fromApp({ url: `http://${RELAY}/creds/${session.id}` }, session.token);
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body!)).toEqual({ Code: 'DAEMON_UNAVAILABLE', Message: 'the vault daemon did not answer on its relay socket' });
    expect(await exited).toBe(1);
    const lines = relay.output().split('\n').filter((l) => l.startsWith('vault:'));
    expect(lines).toEqual([`vault: the daemon stopped answering on ${daemon.paths.relaySocket}; start it (\`vault server start\`); the relay container restarts and finds the new socket`]);
  }, TIMEOUT);
});
