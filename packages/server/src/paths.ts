import { homedir } from 'node:os';
import { join } from 'node:path';

export interface DaemonPaths {
  stateDir: string;
  /** The control API's Unix socket (0600). */
  socket: string;
  /** The daemon's pid (0600). */
  pidFile: string;
  /** `{pid, port, socket, …}` for tools; never a secret (0600). */
  stateFile: string;
  /** pino JSON with the audit trail (0600). */
  logFile: string;
}

/** `$VAULT_STATE_DIR`, else `~/.vault/daemon`. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.VAULT_STATE_DIR || join(homedir(), '.vault', 'daemon');
}

export function daemonPaths(stateDir: string = defaultStateDir()): DaemonPaths {
  return {
    stateDir,
    socket: join(stateDir, 'control.sock'),
    pidFile: join(stateDir, 'daemon.pid'),
    stateFile: join(stateDir, 'daemon.json'),
    logFile: join(stateDir, 'daemon.log'),
  };
}
