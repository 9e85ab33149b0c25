import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { VaultError } from '@vault/core';
import { isProcessAlive, readPidFile } from './processes.js';
import { RELAY_SOCKET_NAME } from './relay/relayProtocol.js';

export interface DaemonPaths {
  stateDir: string;
  /** The control API's Unix socket (0600). */
  socket: string;
  /** The relay socket (0600): the container credential routes only, for `vault relay` (relay/relaySocket.ts). */
  relaySocket: string;
  /** The daemon's pid (0600). */
  pidFile: string;
  /** `{pid, port, socket, …}` for tools; never a secret (0600). */
  stateFile: string;
  /** pino JSON with the audit trail (0600). */
  logFile: string;
}

/** Where the daemon's state directory comes from. */
export type StateDirSource = 'VAULT_STATE_DIR' | 'XDG_RUNTIME_DIR' | 'HOME';

export interface StateLocation {
  /** The state directory a new daemon uses. */
  dir: string;
  source: StateDirSource;
  /** The variable's value (VAULT_STATE_DIR, or XDG_RUNTIME_DIR the state directory is in). */
  given?: string;
  /**
   * `~/.vault/daemon`, when the state moved from there to XDG_RUNTIME_DIR: a daemon of the previous
   * version may still run there, or have left sessions to restore.
   */
  legacy?: string;
}

/** The place the state directory had before XDG_RUNTIME_DIR was used, and still has without one. */
export function homeStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.HOME || homedir(), '.vault', 'daemon');
}

/**
 * `$VAULT_STATE_DIR`; else `$XDG_RUNTIME_DIR/vault` (a per-user tmpfs that a container or VM sharing
 * HOME does not see, removed at logout: where ssh-agent and gpg-agent keep their sockets); else
 * `~/.vault/daemon` (macOS, or no login session). Pure: see checkStateLocation.
 */
export function stateLocation(env: NodeJS.ProcessEnv = process.env): StateLocation {
  if (env.VAULT_STATE_DIR) return { dir: env.VAULT_STATE_DIR, source: 'VAULT_STATE_DIR', given: env.VAULT_STATE_DIR };
  if (env.XDG_RUNTIME_DIR) {
    return { dir: join(env.XDG_RUNTIME_DIR, 'vault'), source: 'XDG_RUNTIME_DIR', given: env.XDG_RUNTIME_DIR, legacy: homeStateDir(env) };
  }
  return { dir: homeStateDir(env), source: 'HOME' };
}

/** The state directory, unchecked. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return stateLocation(env).dir;
}

/**
 * Refuses a VAULT_STATE_DIR or XDG_RUNTIME_DIR the daemon must not use: missing, not a directory,
 * writable by others (anyone could plant a socket there that answers like the daemon, and collect
 * MFA codes and profiles), or someone else's. Creates nothing. The XDG spec says to fall back with a
 * warning when XDG_RUNTIME_DIR is unusable; a variable that is set but wrong is refused instead, since
 * falling back would put the socket back where everything sharing HOME reaches it. An unset one falls
 * back to HOME silently.
 */
export function checkStateLocation(location: StateLocation, uid: number | undefined = process.getuid?.()): void {
  if (location.source === 'HOME' || location.given === undefined) return;
  const name = location.source;
  const given = location.given;
  const fix =
    name === 'VAULT_STATE_DIR'
      ? `create it with \`mkdir -m 700 ${given}\`, or unset VAULT_STATE_DIR`
      : 'unset XDG_RUNTIME_DIR (the daemon then keeps its state in ~/.vault/daemon), or point it at your own runtime directory (/run/user/$(id -u))';
  if (name === 'XDG_RUNTIME_DIR' && !isAbsolute(given)) {
    throw new VaultError('USAGE', `XDG_RUNTIME_DIR "${given}" is not an absolute path`, { hint: fix });
  }
  let stat;
  try {
    stat = statSync(given);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new VaultError('USAGE', `${name} ${given} does not exist`, { hint: fix });
    if (code === 'ENOTDIR') throw new VaultError('USAGE', `${name} ${given} is not a directory`, { hint: fix });
    throw new VaultError('USAGE', `${name} ${given} cannot be read (${code ?? 'error'})`, { hint: fix });
  }
  const own = name === 'VAULT_STATE_DIR' ? `set VAULT_STATE_DIR to a directory of your own (mkdir -m 700 DIR)` : fix;
  if (!stat.isDirectory()) throw new VaultError('USAGE', `${name} ${given} is not a directory`, { hint: own });
  if (uid !== undefined && stat.uid !== uid) throw new VaultError('USAGE', `${name} ${given} belongs to another user (uid ${stat.uid})`, { hint: own });
  if ((stat.mode & 0o022) !== 0) {
    throw new VaultError('USAGE', `${name} ${given} is writable by other users (mode ${(stat.mode & 0o7777).toString(8)})`, {
      hint: name === 'VAULT_STATE_DIR' ? `\`chmod 700 ${given}\`, or set VAULT_STATE_DIR to a directory of your own` : fix,
    });
  }
}

/** stateLocation, checked. */
export function checkedStateLocation(env: NodeJS.ProcessEnv = process.env): StateLocation {
  const location = stateLocation(env);
  checkStateLocation(location);
  return location;
}

export function daemonPaths(stateDir: string = defaultStateDir()): DaemonPaths {
  return {
    stateDir,
    socket: join(stateDir, 'control.sock'),
    relaySocket: join(stateDir, RELAY_SOCKET_NAME),
    pidFile: join(stateDir, 'daemon.pid'),
    stateFile: join(stateDir, 'daemon.json'),
    logFile: join(stateDir, 'daemon.log'),
  };
}

/**
 * The state directory of the daemon to talk to: the location's, except while a daemon started
 * before the move to XDG_RUNTIME_DIR still runs in ~/.vault/daemon (its pid file names a live
 * process) and none has started in the new place — the upgrade does not cut off its sessions.
 * Costs a read of the new pid file and, when there is none, of the old one and a signal 0. A daemon
 * that has ended in the old place is not followed: the next one starts in the new place and
 * restores its sessions (withMovedRecords).
 */
export function stateDirInUse(location: StateLocation): string {
  if (location.legacy === undefined || readPidFile(daemonPaths(location.dir).pidFile) !== undefined) return location.dir;
  const pid = readPidFile(daemonPaths(location.legacy).pidFile);
  return pid !== undefined && isProcessAlive(pid) ? location.legacy : location.dir;
}
