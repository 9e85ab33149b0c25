import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CredentialKeyring, VaultError, isVaultError, mfaTokenSource } from '@vault/core';
import { checkedStateLocation, DaemonClient, UPSTREAM_MIN_LIFE_MS, daemonPaths, ensureDaemon, isProcessAlive, readPidFile, stateDirInUse, type StateLocation } from '@vault/server/client';
import type { Context } from './context.js';
import { daemonEnvironment } from './environment/daemonEnvironment.js';
import { DAEMON_STDIO_WITH_PASSPHRASE, PASSPHRASE_FD, PASSPHRASE_FD_VARIABLE, sendPassphrase } from './daemonPassphrase.js';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));

/** Where a new daemon keeps its state: VAULT_STATE_DIR, XDG_RUNTIME_DIR or HOME, refused when unsafe. */
export function stateLocationOf(ctx: Context): StateLocation {
  return checkedStateLocation(ctx.env);
}

/** The state directory of the daemon this command talks to (see stateDirInUse: the old place while its daemon runs). */
export function stateDir(ctx: Context): string {
  return stateDirInUse(stateLocationOf(ctx));
}

/**
 * The variables that say where a spawned daemon keeps its state: it resolves the same place as
 * this command (and, from XDG_RUNTIME_DIR, the old place whose sessions it takes over).
 */
export function daemonLocationEnv(ctx: Context): NodeJS.ProcessEnv {
  const location = stateLocationOf(ctx);
  if (location.source === 'VAULT_STATE_DIR') return { VAULT_STATE_DIR: location.dir };
  return { VAULT_STATE_DIR: undefined, HOME: ctx.homeDir, ...(location.source === 'XDG_RUNTIME_DIR' ? { XDG_RUNTIME_DIR: location.given } : {}) };
}

/**
 * After a daemon started in the new place: the pid file, socket and daemon.json a daemon killed in
 * the old place left there (its sessions were moved into the new daemon). Only while the pid file
 * names a process that has ended; the old log stays, as that daemon's audit trail.
 */
export function removeLegacyLeftovers(location: StateLocation): void {
  if (location.legacy === undefined) return;
  const paths = daemonPaths(location.legacy);
  const pid = readPidFile(paths.pidFile);
  if (pid === undefined || isProcessAlive(pid)) return;
  for (const file of [paths.socket, paths.stateFile, paths.pidFile]) rmSync(file, { force: true });
}

/**
 * `vault server run`, detached, with a scrubbed environment: what it needs from this command's —
 * STS endpoints, config path, backend, TTLs, the keychain's session bus (daemonEnvironment.ts) —
 * and nothing else, so no key exported in this shell lives on in it. For the file backend it is
 * handed the passphrase over a pipe on its fd 3 (read once at start), so it can unlock the keyring
 * without a terminal (like ssh-agent); never in its environment, never in an argument.
 */
function spawnDaemon(ctx: Context): ChildProcess {
  // daemonLocationEnv: the daemon must find the same state directory (and the old place).
  const env: NodeJS.ProcessEnv = { ...daemonEnvironment(ctx.env), ...daemonLocationEnv(ctx) };
  if (ctx.options.backend) env.AWS_VAULT_BACKEND = ctx.options.backend;
  // The keyring flags, as the variables they stand for (paths made absolute: the daemon runs elsewhere).
  if (ctx.options.fileDir) env.AWS_VAULT_FILE_DIR = resolve(ctx.options.fileDir);
  if (ctx.options.passDir) env.AWS_VAULT_PASS_PASSWORD_STORE_DIR = resolve(ctx.options.passDir);
  if (ctx.options.passCmd) env.AWS_VAULT_PASS_CMD = ctx.options.passCmd;
  if (ctx.options.passPrefix !== undefined) env.AWS_VAULT_PASS_PREFIX = ctx.options.passPrefix;
  const passphrase = ctx.filePassphrase;
  if (passphrase !== undefined) env[PASSPHRASE_FD_VARIABLE] = String(PASSPHRASE_FD);
  const stdio = passphrase !== undefined ? [...DAEMON_STDIO_WITH_PASSPHRASE] : 'ignore';
  const child = spawn(process.execPath, [BIN, 'server', 'run'], { detached: true, stdio, env });
  if (passphrase !== undefined) sendPassphrase(child, passphrase);
  child.unref();
  return child;
}

/**
 * A running daemon, started in the background when there is none. A daemon started after a crash
 * restores the sessions the killed one held (from the keyring), with the same URIs and tokens.
 */
export async function daemon(ctx: Context): Promise<DaemonClient> {
  const dir = stateDir(ctx);
  // A daemon in the old place that does not answer is waited for, never joined by a second one.
  const spawnHere = dir === stateLocationOf(ctx).dir;
  const { client } = await ensureDaemon({ stateDir: dir, spawn: () => (spawnHere ? spawnDaemon(ctx) : undefined), timeoutMs: 10_000 });
  return client;
}

/** Opens the keyring now (asking for a file passphrase on the terminal) so a daemon started next is handed it. */
export async function unlockKeyring(ctx: Context): Promise<void> {
  const keyring = await ctx.keyring();
  if (keyring.backend === 'file') await new CredentialKeyring(keyring).profiles().then((names) => names[0] && keyring.get(names[0]));
}

/**
 * The pid a daemon left behind when it ended without cleaning up (killed, crashed): its pid file
 * is still there and names a process that is gone. A daemon that stops cleanly removes it.
 * Returned with the state directory it left its files in: the new place, else the old one.
 */
export function crashedDaemon(ctx: Context): { pid: number; stateDir: string } | undefined {
  const location = stateLocationOf(ctx);
  for (const dir of [location.dir, ...(location.legacy === undefined ? [] : [location.legacy])]) {
    const pid = readPidFile(daemonPaths(dir).pidFile);
    if (pid !== undefined) return isProcessAlive(pid) ? undefined : { pid, stateDir: dir };
  }
  return undefined;
}

/**
 * The daemon a command needs to talk to: the running one; after a crash a new one, which brings
 * the killed daemon's sessions back (the next command restores them); undefined when none runs
 * and none crashed.
 */
export async function runningDaemon(ctx: Context): Promise<DaemonClient | undefined> {
  const dir = stateDir(ctx);
  const client = new DaemonClient({ stateDir: dir });
  if (await client.isRunning()) return client;
  // A daemon killed in the old place counts too: the new one restores its sessions.
  const pid = readPidFile(daemonPaths(dir).pidFile) ?? crashedDaemon(ctx)?.pid;
  if (pid === undefined) return undefined;
  if (isProcessAlive(pid)) {
    // Starting, or hung: never start a second daemon beside a live one.
    throw new VaultError('DAEMON_UNAVAILABLE', `the vault daemon (pid ${pid}) does not answer on its socket`, {
      hint: `wait a moment and try again; see its log at ${client.logFile}`,
    });
  }
  const crashed = pid;
  await unlockKeyring(ctx);
  const restarted = await daemon(ctx);
  const status = await restarted.status();
  if (status.pid !== crashed) {
    ctx.stderr.write(`vault: the daemon (pid ${crashed}) had ended without stopping; started a new one (pid ${status.pid}) with ${status.sessions} restored session(s)\n`);
  }
  return restarted;
}

export interface DaemonWatch {
  stop(): void;
}

/**
 * Keeps a daemon behind a running `vault exec --server` child. Every `intervalMs` (100 ms) it checks that
 * the daemon's process lives (one signal-0 and a /proc read: no I/O on the daemon). When the
 * daemon has ended without stopping — killed, crashed: its pid file is left — it starts a new one
 * the way this command started the first, which restores the child's session with the same URI
 * and token, so the child's next request is answered. A daemon stopped on purpose
 * (`vault server stop`) is not restarted.
 */
export function superviseDaemon(ctx: Context, sessionId: string, options: { intervalMs?: number } = {}): DaemonWatch {
  // Followed when a restart moves the daemon (from the old place to the new one).
  let paths = daemonPaths(stateDir(ctx));
  let pid = readPidFile(paths.pidFile);
  let stopped = false;
  let busy = false;
  let failedOnce = false;

  const check = async () => {
    if (stopped || busy || (pid !== undefined && isProcessAlive(pid))) return;
    busy = true;
    try {
      const current = readPidFile(paths.pidFile);
      if (current === undefined) {
        ctx.stderr.write(`vault: the credential daemon was stopped; session ${sessionId} ended with it\n`);
        watch.stop();
        return;
      }
      if (current !== pid && isProcessAlive(current)) {
        // Another command restarted it already.
        pid = current;
        return;
      }
      const started = Date.now();
      const client = await daemon(ctx);
      const status = await client.status();
      if (stopped) return;
      const lost = pid;
      pid = status.pid;
      paths = daemonPaths(dirname(client.socketPath));
      failedOnce = false;
      const session = await client.getSession(sessionId).catch(() => undefined);
      const took = Date.now() - started;
      if (!session) {
        ctx.stderr.write(`vault: the credential daemon (pid ${lost ?? '?'}) ended; a new one (pid ${status.pid}) started, but session ${sessionId} could not be restored\n`);
      } else if (session.state !== 'active') {
        ctx.stderr.write(
          `vault: the credential daemon (pid ${lost ?? '?'}) ended; a new one (pid ${status.pid}) restored session ${sessionId} in ${took} ms, in state ${session.state}${session.lastError ? `: ${session.lastError.message}` : ''}\n`,
        );
      } else {
        ctx.stderr.write(`vault: the credential daemon (pid ${lost ?? '?'}) ended; a new one (pid ${status.pid}) restored session ${sessionId} in ${took} ms\n`);
      }
    } catch (error) {
      if (!failedOnce) {
        failedOnce = true;
        const message = isVaultError(error) ? error.message : (error as Error).message;
        ctx.stderr.write(`vault: the credential daemon ended and could not be restarted (${message}); retrying\n`);
      }
    } finally {
      busy = false;
    }
  };

  const timer = setInterval(() => void check(), options.intervalMs ?? 100);
  timer.unref();
  const watch: DaemonWatch = {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
  return watch;
}

/**
 * The MFA code a new daemon session needs, asked here because the daemon never prompts: only when
 * no cached MFA session has enough life — judged as the daemon will judge it (the life it needs
 * to serve a session, and an explicit --duration), so that it never starts without a code it
 * needs. Also unlocks the keyring first, so a file-backend passphrase is known before the daemon is spawned.
 */
export async function mfaCodeForDaemon(
  ctx: Context,
  profile: string,
  options: { mfaToken?: string; region?: string; noSession?: boolean; durationSeconds?: number },
): Promise<string | undefined> {
  const chain = await ctx.chain(profile, {
    region: options.region,
    mfaToken: options.mfaToken,
    noSession: options.noSession,
    minLifeMs: UPSTREAM_MIN_LIFE_MS,
    ...(options.durationSeconds ? { durationSeconds: options.durationSeconds } : {}),
  });
  if (options.mfaToken !== undefined) return options.mfaToken;
  if (!(await chain.needsMfaCode())) return undefined;
  const source = mfaTokenSource({ mfaProcess: chain.target.mfaProcess, prompt: ctx.mfaPrompt(), env: ctx.env });
  return source({ serial: chain.mfaSerial!, profile });
}

/**
 * Signs in to IAM Identity Center here, when the profile's chain starts at an SSO profile and no
 * cached sign-in (or refresh token) can serve it: the daemon that is handed the profile next
 * never prompts and never opens a browser, so it finds the token in the keyring.
 */
export async function ssoSignInForDaemon(ctx: Context, profile: string, options: { region?: string | undefined; stdout: boolean }): Promise<void> {
  const chain = await ctx.chain(profile, { ...(options.region ? { region: options.region } : {}), stdout: options.stdout });
  if (await chain.needsSsoSignIn()) await chain.renewSsoSignIn();
}
