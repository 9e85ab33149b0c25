import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonClient } from '@vault/server/client';
import { REPO, VAULT_BIN } from '../support/cli.js';
import { childPids, environOf, findLeaks, processArguments } from '../support/leaks.js';
import { BACKENDS, MFA_SERIAL, ROLE_A, ROLE_B, World, type Backend } from '../support/world.js';

/**
 * Daemon crash: `kill -9` the daemon while a child of `vault exec --server` and other
 * SDK clients poll it. The exec restarts the daemon (or the next command does), the new daemon
 * restores every session from the keyring with the same URI and token, serving the credentials
 * it was serving — no MFA prompt, no GetSessionToken — and the stale pid file and socket are
 * replaced. Every figure is printed as a `FIGURE daemonCrash …` line.
 */

const require = createRequire(join(REPO, 'test/package.json'));
const SDK_PROVIDERS = pathToFileURL(require.resolve('@aws-sdk/credential-providers')).href;

/**
 * A client that asks its endpoint for credentials every 100 ms and appends one JSON line per
 * attempt — time, success, the access key id (not a secret) or the failure — until `stopFile`
 * exists. Modes: `ecs` (plain fetch on the container endpoint), `sdk` (the JS SDK's
 * fromContainerMetadata, a fresh provider each time: no SDK cache), `imds` (IMDSv2 by hand).
 */
const POLLER = `
import { appendFileSync, existsSync } from 'node:fs';
const [mode, out, stopFile, sdkUrl] = process.argv.slice(2);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const sdk = mode === 'sdk' ? await import(sdkUrl) : undefined;
const timeout = () => AbortSignal.timeout(1000);
async function once() {
  if (mode === 'ecs') {
    const res = await fetch(process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI, { headers: { Authorization: process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN }, signal: timeout() });
    if (res.status !== 200) return 'HTTP ' + res.status;
    return (await res.json()).AccessKeyId;
  }
  if (mode === 'sdk') return (await sdk.fromContainerMetadata({ timeout: 1000, maxRetries: 0 })()).accessKeyId;
  const base = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  const t = await fetch(base + 'latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, signal: timeout() });
  if (t.status !== 200) return 'HTTP ' + t.status;
  const headers = { 'x-aws-ec2-metadata-token': await t.text() };
  const role = await (await fetch(base + 'latest/meta-data/iam/security-credentials/', { headers, signal: timeout() })).text();
  const res = await fetch(base + 'latest/meta-data/iam/security-credentials/' + role, { headers, signal: timeout() });
  if (res.status !== 200) return 'HTTP ' + res.status;
  return (await res.json()).AccessKeyId;
}
while (!existsSync(stopFile)) {
  const t = Date.now();
  let line;
  try {
    const key = await once();
    line = /^ASIA/.test(key) ? { t, ok: true, key } : { t, ok: false, error: key };
  } catch (error) {
    line = { t, ok: false, error: String(error && (error.cause?.code ?? error.name ?? error)) };
  }
  appendFileSync(out, JSON.stringify(line) + '\\n');
  await new Promise((resolve) => setTimeout(resolve, 100));
}
`;

interface Attempt {
  t: number;
  ok: boolean;
  key?: string;
  error?: string;
}

interface Poller {
  name: string;
  out: string;
  process: ChildProcess;
  output: () => string;
}

/**
 * The README example's profiles under names of this file's own: the keychain (service `vault`) is shared by
 * every test file in the D-Bus session, and these keep this file's keys and cached credentials apart.
 */
const CONFIG = `[profile crash-central]
region = ap-northeast-1
mfa_serial = ${MFA_SERIAL}

[profile crash-a]
include_profile = crash-central
role_arn = ${ROLE_A}

[profile crash-b]
source_profile = crash-central
role_arn = ${ROLE_B}
mfa_serial = ${MFA_SERIAL}
duration_seconds = 3600
`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function attempts(poller: Poller): Attempt[] {
  if (!existsSync(poller.out)) return [];
  return readFileSync(poller.out, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Attempt);
}

/** Polls `condition` every 50 ms until it holds (or fails after `ms`: a bound, not a timing assertion). */
async function until<T>(what: string, condition: () => T | undefined | false | Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** How a gap looked to one client: when it was served again after `since`, and what failed meanwhile. */
function gap(poller: Poller, since: number): { restoreMs: number; failed: number; servedAgainAt: number; kinds: string[] } | undefined {
  const after = attempts(poller).filter((a) => a.t >= since);
  const firstOk = after.find((a) => a.ok);
  if (!firstOk) return undefined;
  const failures = after.filter((a) => !a.ok && a.t < firstOk.t);
  return { restoreMs: firstOk.t - since, failed: failures.length, servedAgainAt: firstOk.t, kinds: failures.map((a) => a.error ?? '?') };
}

/** `ECONNREFUSED×12,HTTP 503×1`: what the clients saw while the daemon was down. */
function kinds(list: string[]): string {
  const counts = new Map<string, number>();
  for (const k of list) counts.set(k.replace(/\s+/g, '_'), (counts.get(k.replace(/\s+/g, '_')) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k}x${n}`).join(',') || 'none';
}

function daemonFiles(world: World) {
  const dir = join(world.home, '.vault', 'daemon');
  return { dir, pidFile: join(dir, 'daemon.pid'), stateFile: join(dir, 'daemon.json'), socket: join(dir, 'control.sock'), log: join(dir, 'daemon.log') };
}

function daemonPid(world: World): number {
  return Number.parseInt(readFileSync(daemonFiles(world).pidFile, 'utf8').trim(), 10);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

/** Sessions as `vault session ls` shows them: id → endpoint and state. */
function listed(stdout: string): Map<string, { endpoint: string; state: string }> {
  const rows = stdout.trim().split('\n').slice(1);
  return new Map(
    rows.map((row) => {
      const cells = row.trim().split(/\s+/);
      return [cells[1]!, { endpoint: cells[2]!, state: cells[cells.length - 1]! }];
    }),
  );
}

/** From the daemon log: when the new daemon started (its first line), when it listened, and its own restore time. */
async function restartPhases(world: World, since: number): Promise<string> {
  // The daemon writes its log in batches: wait for the lines rather than read too early.
  return until('the restart in the daemon log', () => phases(world, since), 5_000).catch(() => 'phases=unknown');
}

function phases(world: World, since: number): string | undefined {
  const lines = readFileSync(daemonFiles(world).log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { time: number; event?: string; ms?: number; loadMs?: number })
    .filter((l) => l.time >= since);
  const first = lines[0];
  const restored = lines.find((l) => l.event === 'sessions-restored');
  const started = lines.find((l) => l.event === 'daemon-start');
  if (!first || !restored || !started) return undefined;
  return `daemonFirstLogMs=${first.time - since} daemonListeningMs=${started.time - since} insideStartDaemonMs=${restored.ms} keyringLoadMs=${restored.loadMs}`;
}

/**
 * `/proc/PID/environ` of the running daemon and of `vault exec --server`'s command, captured for the
 * leak scan: processes vault starts, handed neither the file passphrase nor the shell's keys.
 * Returns how many processes were captured.
 */
function captureEnvirons(world: World, when: string, exec?: Poller): number {
  const pids: Array<[string, number]> = [[`daemon`, daemonPid(world)]];
  for (const pid of childPids(exec?.process.pid)) pids.push(['exec child', pid]);
  let captured = 0;
  for (const [what, pid] of pids) {
    const environ = environOf(pid);
    expect(environ, `/proc/${pid}/environ of the ${what} ${when}`).toMatch(/^PATH=/m);
    world.capture(`environ of ${what} (pid ${pid}) ${when}`, environ);
    captured += 1;
  }
  return captured;
}

function figure(text: string): void {
  process.stdout.write(`FIGURE daemonCrash ${text}\n`);
}

/** What a shell looks like after `eval "$(vault session start …)"`: no keyring settings, just the variables. */
function sessionEnv(world: World, env: Record<string, string>): NodeJS.ProcessEnv {
  const base = world.env();
  delete base.AWS_VAULT_BACKEND;
  delete base.AWS_VAULT_FILE_PASSPHRASE;
  return { ...base, ...env };
}

class Clients {
  readonly pollers: Poller[] = [];
  readonly stopFile: string;
  private readonly script: string;

  constructor(private readonly world: World) {
    this.script = join(world.home, 'poller.mjs');
    this.stopFile = join(world.home, 'stop-pollers');
    writeFileSync(this.script, POLLER);
  }

  /** A client process with a session's variables, as a shell after `eval "$(vault session start …)"` starts one. */
  start(name: string, mode: 'ecs' | 'sdk' | 'imds', env: Record<string, string>): Poller {
    const out = join(this.world.home, `${name}.jsonl`);
    const child = spawn(process.execPath, [this.script, mode, out, this.stopFile, SDK_PROVIDERS], { env: sessionEnv(this.world, env), stdio: ['ignore', 'pipe', 'pipe'] });
    return this.track(name, out, child);
  }

  /** `vault exec --server PROFILE -- node poller.mjs ecs …`: the child learns its endpoint from exec alone. */
  startExec(name: string, profile: string, stopFile: string): Poller {
    const out = join(this.world.home, `${name}.jsonl`);
    const child = spawn(process.execPath, [VAULT_BIN, 'exec', '--server', profile, '--', process.execPath, this.script, 'ecs', out, stopFile], {
      env: this.world.env(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin!.end();
    return this.track(name, out, child);
  }

  private track(name: string, out: string, child: ChildProcess): Poller {
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => chunks.push(c));
    child.stderr!.on('data', (c: Buffer) => chunks.push(c));
    const poller = { name, out, process: child, output: () => Buffer.concat(chunks).toString('utf8') };
    this.pollers.push(poller);
    return poller;
  }

  async stopAll(): Promise<void> {
    writeFileSync(this.stopFile, '');
    await Promise.all(
      this.pollers.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.process.exitCode !== null || p.process.signalCode !== null) return resolve();
            const timer = setTimeout(() => p.process.kill('SIGKILL'), 5_000);
            p.process.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    for (const p of this.pollers) this.world.capture(`client ${p.name} output`, p.output());
  }
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe.each(BACKENDS)('a daemon killed with kill -9 comes back with every session, same URI and token, no MFA prompt (%s backend)', (backend: Backend) => {
  let world: World;
  let clients: Clients;
  const tokens: string[] = [];
  let ecs: { id: string; uri: string; token: string; env: Record<string, string> };
  let imds: { id: string; imdsEndpoint: string; env: Record<string, string> };
  let execStop: string;
  let exec: Poller;
  let sdk: Poller;
  let imdsClient: Poller;
  let port: number;
  let environsScanned = 0;

  beforeAll(async () => {
    world = await World.create(backend);
    writeFileSync(join(world.home, '.aws', 'config'), CONFIG);
    clients = new Clients(world);
    const added = await world.vault(['add', '--env', 'crash-central'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
    expect(added.code).toBe(0);
  });

  afterAll(async () => {
    if (!world) return;
    await clients.stopAll();
    await world.vault(['server', 'stop']);
    await world.vault(['clear', 'crash-central']);
    await world.vault(['remove', '-f', 'crash-central']);
    await world.close();
  });

  it('kill -9 while `exec --server` and SDK clients poll: exec restarts the daemon; same URIs and tokens; no MFA, no GetSessionToken', async () => {
    // One MFA code, for the first session; everything after runs from the MFA session in the keyring.
    const startedEcs = await world.vault(['session', 'start', '--format', 'json', '-t', '123456', 'crash-b']);
    expect(startedEcs.code).toBe(0);
    ecs = JSON.parse(startedEcs.stdout);
    const startedImds = await world.vault(['session', 'start', '--imds', '--format', 'json', 'crash-a']);
    expect(startedImds.code).toBe(0);
    imds = JSON.parse(startedImds.stdout);
    tokens.push(ecs.token, (imds as unknown as { token: string }).token);

    execStop = join(world.home, 'stop-exec');
    exec = clients.startExec('exec-child', 'crash-a', execStop);
    sdk = clients.start('sdk-client', 'sdk', ecs.env);
    imdsClient = clients.start('imds-client', 'imds', imds.env);
    const everyone = [exec, sdk, imdsClient];
    await until('every client served three times', () => everyone.every((p) => attempts(p).filter((a) => a.ok).length >= 3));
    environsScanned += captureEnvirons(world, 'before the crash', exec);

    const sessionsBefore = listed((await world.vault(['session', 'ls'])).stdout);
    expect(sessionsBefore.size).toBe(3);
    const execId = [...sessionsBefore.keys()].find((id) => id !== ecs.id && id !== imds.id)!;
    const client = new DaemonClient({ stateDir: daemonFiles(world).dir });
    tokens.push((await client.sessionEnv(execId)).token);
    const stateBefore = JSON.parse(readFileSync(daemonFiles(world).stateFile, 'utf8'));
    port = stateBefore.port;
    expect(port).toBeLessThan(32_768); // below the ephemeral range: no outgoing connection takes it meanwhile

    // The records are in the keyring, one item for the daemon; with the file backend a JWE file
    // (the leak scan at the end checks that no token or credential is in it, or anywhere on disk).
    if (backend === 'file') {
      const items = readdirSync(join(world.home, '.awsvault', 'keys')).filter((name) => name.startsWith('sts.VaultDaemonSessions,'));
      expect(items).toHaveLength(1);
      const path = join(world.home, '.awsvault', 'keys', items[0]!);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(readFileSync(path, 'utf8')).toMatch(/^[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+$/);
    }

    world.sts.resetCalls();
    const oldPid = daemonPid(world);
    const killedAt = Date.now();
    process.kill(oldPid, 'SIGKILL');

    const restored = await until('every client served again', () => {
      const gaps = everyone.map((p) => gap(p, killedAt));
      return gaps.every((g) => g !== undefined) ? (gaps as NonNullable<ReturnType<typeof gap>>[]) : undefined;
    });
    const [execGap, sdkGap, imdsGap] = restored as [ReturnType<typeof gap> & object, ReturnType<typeof gap> & object, ReturnType<typeof gap> & object];
    figure(
      `backend=${backend} trigger=exec-supervisor restoreMs=${Math.max(execGap.restoreMs, sdkGap.restoreMs, imdsGap.restoreMs)} ` +
        `execChildMs=${execGap.restoreMs} sdkEcsMs=${sdkGap.restoreMs} imdsMs=${imdsGap.restoreMs} ` +
        `failedRequests=${execGap.failed + sdkGap.failed + imdsGap.failed} (${kinds([...execGap.kinds, ...sdkGap.kinds, ...imdsGap.kinds])}) getSessionToken=${world.sts.count('GetSessionToken')} assumeRole=${world.sts.count('AssumeRole')} ` +
        (await restartPhases(world, killedAt)),
    );

    // A new daemon; the stale pid file and socket replaced by valid ones.
    const newPid = daemonPid(world);
    expect(newPid).not.toBe(oldPid);
    environsScanned += captureEnvirons(world, 'restarted by exec');
    expect(isAlive(oldPid)).toBe(false);
    expect(isAlive(newPid)).toBe(true);
    const stateAfter = JSON.parse(readFileSync(daemonFiles(world).stateFile, 'utf8'));
    expect(stateAfter).toMatchObject({ pid: newPid, port });
    expect((await client.status()).pid).toBe(newPid);

    // The same sessions, same URIs; the clients' tokens still work; nothing minted at STS.
    const after = await world.vault(['session', 'ls']);
    expect(after.code).toBe(0);
    const sessionsAfter = listed(after.stdout);
    expect([...sessionsAfter.keys()].sort()).toEqual([...sessionsBefore.keys()].sort());
    for (const [id, row] of sessionsBefore) expect(sessionsAfter.get(id)).toEqual({ ...row, state: 'active' });
    expect(world.sts.count('GetSessionToken')).toBe(0);
    expect(world.sts.count('AssumeRole')).toBe(0);
    // The clients are served the very credentials they had before the crash.
    for (const p of everyone) {
      const keys = attempts(p).filter((a) => a.ok);
      const before = keys.filter((a) => a.t < killedAt).at(-1)!.key;
      expect(keys.at(-1)!.key).toBe(before);
    }

    const log = readFileSync(daemonFiles(world).log, 'utf8');
    expect(log).toMatch(/"event":"stale-daemon-files"/);
    expect(log).toMatch(/"event":"sessions-restored"/);

    // The child ends: exec reports the restart on stderr, passes the exit code, stops its session.
    writeFileSync(execStop, '');
    expect(await exitOf(exec.process)).toBe(0);
    expect(exec.output()).toMatch(new RegExp(`restored session ${execId} in \\d+ ms`));
    expect(exec.output()).not.toMatch(/MFA|prompt/i);
    expect(listed((await world.vault(['session', 'ls'])).stdout).has(execId)).toBe(false);
  });

  it('with nobody supervising, the next command starts a daemon that restores the sessions', async () => {
    world.sts.resetCalls();
    const oldPid = daemonPid(world);
    const killedAt = Date.now();
    process.kill(oldPid, 'SIGKILL');
    await until('the daemon to be gone', () => !isAlive(oldPid));
    await until('the clients to notice', () => [sdk, imdsClient].every((p) => attempts(p).some((a) => a.t > killedAt && !a.ok)));
    expect(existsSync(daemonFiles(world).pidFile)).toBe(true); // stale, left by the kill

    const status = await world.vault(['server', 'status']);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(new RegExp(`not running \\(pid ${oldPid} ended without stopping`));

    const commandAt = Date.now();
    const ls = await world.vault(['session', 'ls']);
    const commandMs = Date.now() - commandAt;
    expect(ls.code).toBe(0);
    expect(ls.stderr).toMatch(/started a new one \(pid \d+\) with 2 restored session\(s\)/);
    const rows = listed(ls.stdout);
    expect(rows.get(ecs.id)).toEqual({ endpoint: ecs.uri, state: 'active' });
    expect(rows.get(imds.id)).toEqual({ endpoint: imds.imdsEndpoint, state: 'active' });
    const gaps = await until('the clients served again', () => {
      const g = [sdk, imdsClient].map((p) => gap(p, commandAt));
      return g.every((x) => x !== undefined) ? (g as NonNullable<ReturnType<typeof gap>>[]) : undefined;
    });
    figure(
      `backend=${backend} trigger=next-command commandMs=${commandMs} restoreMs=${Math.max(...gaps.map((g) => g.restoreMs))} ` +
        `getSessionToken=${world.sts.count('GetSessionToken')} assumeRole=${world.sts.count('AssumeRole')} ` +
        (await restartPhases(world, commandAt)),
    );
    expect(world.sts.count('GetSessionToken')).toBe(0);
    expect(daemonPid(world)).not.toBe(oldPid);
  });

  it('three commands at once after a crash start one daemon between them', async () => {
    const oldPid = daemonPid(world);
    process.kill(oldPid, 'SIGKILL');
    await until('the daemon to be gone', () => !isAlive(oldPid));
    const since = Date.now();
    const runs = await Promise.all([1, 2, 3].map(() => world.vault(['session', 'ls'])));
    for (const run of runs) {
      expect(run.code).toBe(0);
      expect([...listed(run.stdout).keys()].sort()).toEqual([ecs.id, imds.id].sort());
    }
    const newPid = daemonPid(world);
    expect(isAlive(newPid)).toBe(true);
    environsScanned += captureEnvirons(world, 'restarted by session ls');
    const starts = await until('the new daemon in the log', () => {
      const lines = readFileSync(daemonFiles(world).log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { time: number; event?: string; pid?: number });
      const found = lines.filter((l) => l.time >= since && l.event === 'daemon-start');
      return found.length > 0 ? found : undefined;
    });
    expect(starts.map((l) => l.pid)).toEqual([newPid]);
  });

  it('a clean stop forgets the sessions: nothing is restored after it', async () => {
    const stopped = await world.vault(['server', 'stop']);
    expect(stopped.code).toBe(0);
    await until('the daemon files to be removed', () => !existsSync(daemonFiles(world).pidFile));
    const started = await world.vault(['server', 'start']);
    expect(started.code).toBe(0);
    expect(started.stderr).toMatch(/0 session\(s\)/);
    if (backend === 'file') {
      expect(readdirSync(join(world.home, '.awsvault', 'keys')).filter((name) => name.startsWith('sts.VaultDaemonSessions,'))).toEqual([]);
    }
  });

  it('restored after the MFA session ended: needs-mfa with what to run; renew brings it back with the same URI and token', async () => {
    // A 15-minute MFA session, judged ended by a daemon that wants 15 minutes left (AWS_MIN_TTL):
    // the state a restore finds when the daemon was down past the MFA session's end.
    const short = { AWS_CHAINED_SESSION_TOKEN_TTL: '15m' };
    const ended = { AWS_CHAINED_SESSION_TOKEN_TTL: '16m', AWS_MIN_TTL: '15m' };
    await world.vault(['server', 'stop']);
    await world.vault(['clear', 'crash-central']);
    const started = await world.vault(['session', 'start', '--format', 'json', '-t', '123456', 'crash-a'], short);
    expect(started.code).toBe(0);
    const session = JSON.parse(started.stdout) as typeof ecs;
    tokens.push(session.token);
    const poller = clients.start('after-mfa-end', 'ecs', session.env);
    await until('the client served', () => attempts(poller).some((a) => a.ok));

    world.sts.resetCalls();
    process.kill(daemonPid(world), 'SIGKILL');
    const restart = await world.vault(['server', 'start'], ended);
    expect(restart.code).toBe(0);
    const ls = await until('the restored session to show needs-mfa', async () => {
      const r = await world.vault(['session', 'ls'], ended);
      return listed(r.stdout).get(session.id)?.state === 'needs-mfa' ? r : undefined;
    });
    expect(listed(ls.stdout).get(session.id)!.endpoint).toBe(session.uri);
    expect(ls.stderr).toContain(`session ${session.id} (crash-a) needs a new MFA code: run \`vault session renew ${session.id}\``);
    expect(world.sts.count('GetSessionToken')).toBe(0);
    // What it was serving is still valid, and is still served meanwhile.
    const since = Date.now();
    await until('the client served by the restored session', () => attempts(poller).some((a) => a.t >= since && a.ok));

    const renewed = await world.vault(['session', 'renew', '-t', '123456', session.id], ended);
    expect(renewed.code).toBe(0);
    expect(renewed.stderr).toMatch(/is active/);
    expect(world.sts.count('GetSessionToken')).toBe(1);
    const renewedAt = Date.now();
    const fresh = await until('the client served renewed credentials', () => attempts(poller).find((a) => a.t >= renewedAt && a.ok));
    expect(fresh.key).not.toBe(attempts(poller).filter((a) => a.ok && a.t < since).at(-1)!.key);
    expect(listed((await world.vault(['session', 'ls'], ended)).stdout).get(session.id)).toEqual({ endpoint: session.uri, state: 'active' });
    await world.vault(['session', 'stop', session.id], ended);
  });

  it('no secret — keys, credentials, session tokens, the file passphrase — in any output, log, state file, keyring file, process argument, or the environment of the daemons and the exec child', async () => {
    await clients.stopAll();
    world.capture('process arguments', processArguments());
    world.capture('daemon.log', readFileSync(daemonFiles(world).log, 'utf8'));
    // `session start --format json` delivers its token on stdout by design; everything else is scanned for tokens too.
    // The exec child's environment carries its own session token by design, too.
    const scanned = Object.fromEntries(
      Object.entries(world.captured).filter(([name]) => !(name.includes('session start') && name.endsWith('stdout')) && !name.startsWith('environ of exec child')),
    );
    process.stdout.write(`FIGURE envScan processes=${environsScanned} suite=daemonCrash backend=${backend}\n`);
    expect(findLeaks([world.user.secretAccessKey, ...world.sts.issuedSecrets(), ...tokens], scanned, [world.home])).toEqual([]);
    expect(world.leaks()).toEqual([]);
  });
});
