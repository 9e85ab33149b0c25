import type { Logger } from '../logging.js';
import { isProcessAlive, procStat } from '../processes.js';
import type { SessionOwnerInfo } from './session.js';
import type { SessionRegistry } from './sessionRegistry.js';

// As with aws-vault, whose server dies with its process, an endpoint does not outlive the command
// it was made for: sessions of `vault exec --server` processes that ended without stopping them
// (killed with SIGKILL, or crashed) are stopped — the same rule a restore applies.

/** What identifies a session's owner process across a daemon restart (pid plus start time on Linux). */
export function ownerInfo(pid: number): SessionOwnerInfo | undefined {
  if (!isProcessAlive(pid)) return undefined;
  const stat = procStat(pid);
  return stat ? { pid, startTime: stat.startTime } : { pid };
}

/** Whether the owner recorded for a session is still the same running process. */
export function isOwnerAlive(owner: SessionOwnerInfo): boolean {
  if (!isProcessAlive(owner.pid)) return false;
  if (owner.startTime === undefined) return true;
  const stat = procStat(owner.pid);
  return stat === undefined || stat.startTime === owner.startTime;
}

/** How often the daemon looks for sessions whose `vault exec --server` has ended. */
export const OWNER_CHECK_MS = 10_000;

/** Stops the sessions whose owner has ended; returns their ids. */
export async function stopOrphanedSessions(registry: SessionRegistry, alive: (owner: SessionOwnerInfo) => boolean): Promise<string[]> {
  const ended = registry.list().filter((session) => session.owner !== undefined && !alive(session.owner));
  await Promise.all(ended.map((session) => registry.stop(session.id, { reason: 'owner-ended', ownerPid: session.owner!.pid }).catch(() => undefined)));
  return ended.map((session) => session.id);
}

/**
 * Looks every `intervalMs` (a kill(pid, 0) and a /proc read per owned session). A real interval,
 * not the injected scheduler: whether a process lives is wall-clock business, and tests that step
 * the scheduler through refreshes must not meet it. Returns what stops it.
 */
export function startOrphanReaper(registry: SessionRegistry, alive: (owner: SessionOwnerInfo) => boolean, intervalMs: number, logger: Logger): () => void {
  const timer = setInterval(() => {
    void registry.stopOrphaned(alive).then((ids) => {
      if (ids.length > 0) logger.info({ event: 'sessions-orphaned', sessions: ids }, 'sessions stopped: the vault exec that owned them has ended');
    });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
