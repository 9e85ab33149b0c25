import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CredentialKeyring, VaultError, isVaultError, mfaTokenSource } from '@vault/core';
import { DaemonClient, UPSTREAM_MIN_LIFE_MS, daemonPaths, defaultStateDir, ensureDaemon } from '@vault/server/client';
import type { Context } from './context.js';
import { mfaPrompt } from './prompt/mfaPrompt.js';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));

export function stateDir(ctx: Context): string {
  return defaultStateDir(ctx.env);
}

/**
 * `vault server run`, detached. It inherits this command's environment — STS endpoints, config
 * path, backend — and, for the file backend, the passphrase, so it can unlock the keyring without
 * a terminal (like ssh-agent). The passphrase travels in the environment, never in an argument.
 */
function spawnDaemon(ctx: Context, dir: string): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...ctx.env, VAULT_STATE_DIR: dir };
  if (ctx.options.backend) env.AWS_VAULT_BACKEND = ctx.options.backend;
  if (ctx.unlockedPassphrase !== undefined) env.AWS_VAULT_FILE_PASSPHRASE = ctx.unlockedPassphrase;
  const child = spawn(process.execPath, [BIN, 'server', 'run'], { detached: true, stdio: 'ignore', env });
  child.unref();
  return child;
}

/**
 * A running daemon, started in the background when there is none. A daemon started after a crash
 * restores the sessions the killed one held (from the keyring), with the same URIs and tokens.
 */
export async function daemon(ctx: Context): Promise<DaemonClient> {
  const dir = stateDir(ctx);
  const { client } = await ensureDaemon({ stateDir: dir, spawn: () => spawnDaemon(ctx, dir), timeoutMs: 10_000 });
  return client;
}

/** Opens the keyring now (asking for a file passphrase on the terminal) so a daemon started next inherits it. */
export async function unlockKeyring(ctx: Context): Promise<void> {
  const keyring = await ctx.keyring();
  if (keyring.backend === 'file') await new CredentialKeyring(keyring).profiles().then((names) => names[0] && keyring.get(names[0]));
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (a daemon killed with -9 stays one until its parent reaps it). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // not Linux, or it ended just now (the next check sees that)
  }
}

/**
 * The pid a daemon left behind when it ended without cleaning up (killed, crashed): its pid file
 * is still there and names a process that is gone. A daemon that stops cleanly removes it.
 */
export function crashedDaemonPid(ctx: Context): number | undefined {
  const pid = readPid(daemonPaths(stateDir(ctx)).pidFile);
  return pid !== undefined && !isAlive(pid) ? pid : undefined;
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
  const pid = readPid(daemonPaths(dir).pidFile);
  if (pid === undefined) return undefined;
  if (isAlive(pid)) {
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
  const paths = daemonPaths(stateDir(ctx));
  let pid = readPid(paths.pidFile);
  let stopped = false;
  let busy = false;
  let failedOnce = false;

  const check = async () => {
    if (stopped || busy || (pid !== undefined && isAlive(pid))) return;
    busy = true;
    try {
      const current = readPid(paths.pidFile);
      if (current === undefined) {
        ctx.stderr.write(`vault: the credential daemon was stopped; session ${sessionId} ended with it\n`);
        watch.stop();
        return;
      }
      if (current !== pid && isAlive(current)) {
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
  const source = mfaTokenSource({ mfaProcess: chain.target.mfaProcess, prompt: mfaPrompt(ctx.promptDriver(), ctx.ask), env: ctx.env });
  return source({ serial: chain.mfaSerial!, profile });
}
