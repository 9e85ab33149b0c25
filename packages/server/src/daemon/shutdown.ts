import type { FastifyInstance } from 'fastify';
import type { RelaySocket } from '../relay/relaySocket.js';
import type { SessionRegistry } from '../sessions/sessionRegistry.js';
import type { DaemonLog } from './daemonLog.js';
import type { ImdsListeners } from './listeners.js';
import type { StateDirectoryClaim } from './stateDirectory.js';

/** What a daemon holds open, in the order it lets go of it. */
export interface DaemonParts {
  registry: SessionRegistry;
  imds: ImdsListeners;
  server: FastifyInstance;
  control: FastifyInstance;
  /** Containers' way in, through `vault relay` (relay/relaySocket.ts); never the control API. Open once the control socket is. */
  relay?: RelaySocket | undefined;
  claim: StateDirectoryClaim;
  log: DaemonLog;
}

/**
 * A clean stop: every session stopped (the store emptied), the listeners closed, our files
 * removed, the audit lines still waiting on a pid lookup written, then the log closed.
 */
export async function stopDaemonParts(parts: DaemonParts, reason: string): Promise<void> {
  const { logger } = parts.log;
  logger.info({ event: 'daemon-stop', reason }, 'daemon stopping');
  await parts.registry.stopAll();
  await closeListeners(parts);
  parts.claim.release();
  await parts.log.audit.drain();
  logger.info({ event: 'daemon-stopped' }, 'daemon stopped');
  await parts.log.close();
}

/**
 * A start that failed after claiming the state directory: restored sessions go quiet but keep
 * their records (the next start tries again), and only what is ours is removed.
 */
export async function abandonStart(parts: DaemonParts, error: unknown): Promise<void> {
  await parts.registry.release();
  await closeListeners(parts);
  parts.claim.release();
  parts.log.logger.error({ event: 'daemon-start-failed', message: (error as Error).message }, 'daemon could not start');
  await parts.log.close();
}

async function closeListeners(parts: DaemonParts): Promise<void> {
  await parts.imds.closeAll();
  await Promise.allSettled([parts.server.close(), parts.control.close(), parts.relay?.close()]);
}
