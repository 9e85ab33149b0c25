import { dirname } from 'node:path';
import { isVaultError } from '@vault/core';
import { daemonPaths } from '../paths.js';
import { isProcessAlive, readPidFile } from '../processes.js';
import type { DaemonClient } from './daemonClient.js';

export interface DaemonWatch {
  stop(): void;
}

export interface SuperviseDaemonOptions {
  /** The state directory of the daemon that holds the session. */
  stateDir: string;
  sessionId: string;
  /** Starts a new daemon the way the first was started (the CLI spawns `vault server run`). */
  restart: () => Promise<DaemonClient>;
  /** Where the lines for the user go (the CLI's stderr). */
  stderr: { write(text: string): unknown };
  intervalMs?: number;
}

/**
 * Keeps a daemon behind a running `vault exec --server` child. Every `intervalMs` (100 ms) it checks that
 * the daemon's process lives (one signal-0 and a /proc read: no I/O on the daemon). When the
 * daemon has ended without stopping — killed, crashed: its pid file is left — it starts a new one
 * through `restart`, which restores the child's session with the same URI and token, so the
 * child's next request is answered. A daemon stopped on purpose (`vault server stop`) is not restarted.
 */
export function superviseDaemon(options: SuperviseDaemonOptions): DaemonWatch {
  const { sessionId, stderr } = options;
  // Followed when a restart moves the daemon (from the old place to the new one).
  let paths = daemonPaths(options.stateDir);
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
        stderr.write(`vault: the credential daemon was stopped; session ${sessionId} ended with it\n`);
        watch.stop();
        return;
      }
      if (current !== pid && isProcessAlive(current)) {
        // Another command restarted it already.
        pid = current;
        return;
      }
      const started = Date.now();
      const client = await options.restart();
      const status = await client.status();
      if (stopped) return;
      const lost = pid;
      pid = status.pid;
      paths = daemonPaths(dirname(client.socketPath));
      failedOnce = false;
      const session = await client.getSession(sessionId).catch(() => undefined);
      const took = Date.now() - started;
      if (!session) {
        stderr.write(`vault: the credential daemon (pid ${lost ?? '?'}) ended; a new one (pid ${status.pid}) started, but session ${sessionId} could not be restored\n`);
      } else if (session.state !== 'active') {
        stderr.write(
          `vault: the credential daemon (pid ${lost ?? '?'}) ended; a new one (pid ${status.pid}) restored session ${sessionId} in ${took} ms, in state ${session.state}${session.lastError ? `: ${session.lastError.message}` : ''}\n`,
        );
      } else {
        stderr.write(`vault: the credential daemon (pid ${lost ?? '?'}) ended; a new one (pid ${status.pid}) restored session ${sessionId} in ${took} ms\n`);
      }
    } catch (error) {
      if (!failedOnce) {
        failedOnce = true;
        const message = isVaultError(error) ? error.message : (error as Error).message;
        stderr.write(`vault: the credential daemon ended and could not be restarted (${message}); retrying\n`);
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
