import type { ChildProcess } from 'node:child_process';
import { VaultError } from '@vault/core';
import { daemonPaths, defaultStateDir, type StateLocation } from '../paths.js';
import { isProcessAlive, readPidFile } from '../processes.js';
import { DaemonClient } from './daemonClient.js';

/** Whether the pid file names a live process other than `spawned` (a daemon another command started). */
function otherDaemonStarting(stateDir: string, spawned: number | undefined): boolean {
  const pid = readPidFile(daemonPaths(stateDir).pidFile);
  return pid !== undefined && pid !== spawned && isProcessAlive(pid);
}

export interface EnsureDaemonOptions {
  stateDir?: string;
  /** Starts a daemon in the background (the CLI spawns `vault server run` detached). */
  spawn: () => ChildProcess | void;
  /** How long to wait for the socket to answer. */
  timeoutMs?: number;
  pollIntervalMs?: number;
}

export interface EnsureDaemonResult {
  client: DaemonClient;
  /** Whether this call started it. */
  started: boolean;
}

/**
 * A daemon that answers: the running one, or one started through `spawn` and polled for until it
 * answers (5 s by default). Fails with DAEMON_UNAVAILABLE naming the daemon's log.
 */
export async function ensureDaemon(options: EnsureDaemonOptions): Promise<EnsureDaemonResult> {
  const stateDir = options.stateDir ?? defaultStateDir();
  const client = new DaemonClient({ stateDir });
  if (await client.isRunning()) return { client, started: false };

  const child = options.spawn();
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child?.once('exit', (code, signal) => {
    exit = { code, signal };
  });
  child?.once('error', () => {
    exit ??= { code: null, signal: null };
  });

  const timeoutMs = options.timeoutMs ?? 5_000;
  const interval = options.pollIntervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await client.isRunning()) return { client, started: true };
    // A spawned daemon that exits may have lost a race to another one that now answers;
    // the isRunning check above runs once more before giving up. After a crash several commands
    // may start one at once: while another daemon's pid file is fresh, wait for that one.
    if (Date.now() >= deadline) break;
    if (exit !== undefined && !otherDaemonStarting(stateDir, child?.pid)) break;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  if (exit !== undefined && (await client.isRunning())) return { client, started: false };
  const logFile = daemonPaths(stateDir).logFile;
  const why =
    exit !== undefined
      ? `the vault daemon exited before it answered (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code ?? 'unknown'}`})`
      : `the vault daemon did not answer within ${Math.round(timeoutMs / 1000)} s`;
  throw new VaultError('DAEMON_UNAVAILABLE', why, { hint: `see its log at ${logFile}` });
}

/**
 * The variables that say where a spawned daemon keeps its state: it resolves the same place as
 * the command that starts it (and, from XDG_RUNTIME_DIR, the old place whose sessions it takes
 * over).
 */
export function daemonLocationEnv(location: StateLocation, homeDir: string): NodeJS.ProcessEnv {
  if (location.source === 'VAULT_STATE_DIR') return { VAULT_STATE_DIR: location.dir };
  return { VAULT_STATE_DIR: undefined, HOME: homeDir, ...(location.source === 'XDG_RUNTIME_DIR' ? { XDG_RUNTIME_DIR: location.given } : {}) };
}
