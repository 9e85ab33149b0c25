import { chmodSync, closeSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { VaultError } from '@vault/core';
import { DaemonClient } from '../daemonLife/daemonClient.js';
import type { DaemonPaths } from '../paths.js';
import { isProcessAlive, readPidFile } from '../processes.js';

// The daemon's state directory from the daemon's side: made private, claimed through the pid file
// (never from a daemon that answers or is still starting), and left only with what is ours removed.

/** What `daemon.json` holds. */
export interface DaemonStateFile {
  pid: number;
  port: number;
  socket: string;
  startedAt: string;
  version: string;
}

/** Unix socket paths are limited to 108 bytes on Linux (104 on macOS). */
const MAX_SOCKET_PATH = 103;

/** Refuses a state directory whose socket path a Unix socket cannot have. */
export function checkSocketPath(paths: DaemonPaths): void {
  if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH) {
    throw new VaultError('USAGE', `the daemon socket path is too long for a Unix socket: ${paths.socket}`, {
      hint: 'set VAULT_STATE_DIR to a shorter directory',
    });
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Removes the pid file only while it still names `pid`: never another daemon's fresh claim. */
function removePidFileOf(pidFile: string, pid: number): void {
  if (readPidFile(pidFile) === pid) removeQuietly(pidFile);
}

/** The state directory: created 0700, and refused when someone else owns it. */
export function prepareStateDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const stat = statSync(stateDir);
  if (!stat.isDirectory()) throw new VaultError('USAGE', `${stateDir} is not a directory`);
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
    throw new VaultError('USAGE', `the daemon state directory ${stateDir} belongs to another user`, {
      hint: 'set VAULT_STATE_DIR to a directory of your own',
    });
  }
  if ((stat.mode & 0o777) !== 0o700) chmodSync(stateDir, 0o700);
}

/**
 * Whether the state directory is free for a new daemon. A daemon answering on the socket owns it
 * (refused); a pid file whose process is gone, or whose socket does not answer once the startup
 * grace has passed, is stale and removed. The stale socket and daemon.json are removed by the
 * caller once it holds the pid file, so that two daemons started at once after a crash cannot
 * remove each other's files.
 */
async function staleDaemonPid(paths: DaemonPaths, graceMs: number): Promise<number | undefined> {
  const client = new DaemonClient({ socketPath: paths.socket, timeoutMs: 1_000 });
  const status = await client.status().catch(() => undefined);
  if (status) {
    throw new VaultError('USAGE', `a vault daemon is already running (pid ${status.pid}, port ${status.port})`, {
      hint: 'stop it with `vault server stop`, or use it as it is',
    });
  }
  const pid = readPidFile(paths.pidFile);
  if (pid !== undefined && pid !== process.pid && isProcessAlive(pid)) {
    let age = Number.POSITIVE_INFINITY;
    try {
      age = Date.now() - statSync(paths.pidFile).mtimeMs;
    } catch {
      // vanished meanwhile: treat as stale
    }
    if (age < graceMs) {
      throw new VaultError('USAGE', `a vault daemon is starting (pid ${pid})`, { hint: 'wait a moment and try again' });
    }
  }
  if (pid !== undefined) removePidFileOf(paths.pidFile, pid);
  return pid;
}

function writePrivateFile(path: string, content: string, exclusive = false): void {
  const fd = openSync(path, exclusive ? 'wx' : 'w', 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, 0o600);
}

/** A state directory this daemon holds (its pid file names this process). */
export interface StateDirectoryClaim {
  /** The pid of a daemon that had not stopped cleanly, whose files were removed. */
  readonly stalePid: number | undefined;
  /** The control socket is bound: from now on the socket and daemon.json are ours to remove. */
  socketBound(): void;
  /** Writes daemon.json (0600). */
  writeStateFile(state: DaemonStateFile): void;
  /** Removes what is ours: a failed start must not remove a daemon's that won a race with it. */
  release(): void;
}

/**
 * Prepares and claims the state directory: the pid file is written (exclusively) before anything
 * listens, so a second daemon starting now sees us; a socket or daemon.json still there was left
 * by a daemon that did not stop cleanly, and is removed once the pid file is ours.
 */
export async function claimStateDirectory(paths: DaemonPaths, graceMs: number): Promise<StateDirectoryClaim> {
  prepareStateDir(paths.stateDir);
  const stalePid = await staleDaemonPid(paths, graceMs);
  try {
    writePrivateFile(paths.pidFile, `${process.pid}\n`, true);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new VaultError('USAGE', 'another vault daemon is starting in the same state directory', { hint: 'wait a moment and try again' });
    }
    throw error;
  }
  removeQuietly(paths.socket);
  removeQuietly(paths.stateFile);

  let bound = false;
  return {
    stalePid,
    socketBound() {
      bound = true;
    },
    writeStateFile(state) {
      writePrivateFile(paths.stateFile, `${JSON.stringify(state, null, 2)}\n`);
    },
    release() {
      if (bound) removeQuietly(paths.socket);
      removePidFileOf(paths.pidFile, process.pid);
      if (bound) removeQuietly(paths.stateFile);
    },
  };
}
