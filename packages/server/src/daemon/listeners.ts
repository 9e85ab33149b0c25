import type { FastifyInstance } from 'fastify';
import type { Clock } from '@vault/core';
import { buildImdsServer } from '../buildServer.js';
import { listenOnLoopback } from '../listenPort.js';
import type { AuditLog, Logger } from '../logging.js';
import type { ImdsListener, Session } from '../sessions/session.js';
import type { SessionRegistry } from '../sessions/sessionRegistry.js';

// The daemon's TCP listeners on 127.0.0.1: the credential listener every container session shares,
// and one IMDS listener per IMDS session.

/** The IMDS listeners the daemon has open, one per IMDS session. */
export class ImdsListeners {
  private readonly open = new Set<FastifyInstance>();

  constructor(private readonly options: { audit: AuditLog; clock: Clock }) {}

  /** A listener for `session` on `wanted` (a restored session keeps its endpoint), else on a free port. */
  readonly listen = async (session: Session, wanted?: number): Promise<ImdsListener> => {
    let imdsPort = 0;
    const app = buildImdsServer(session, { port: () => imdsPort, audit: this.options.audit, clock: this.options.clock });
    try {
      imdsPort = await listenOnLoopback(app, wanted);
    } catch (error) {
      await app.close().catch(() => undefined);
      throw error;
    }
    this.open.add(app);
    return {
      port: imdsPort,
      close: async () => {
        this.open.delete(app);
        await app.close();
      },
    };
  };

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.open].map((app) => app.close()));
  }
}

/**
 * Listens with the credential listener: on `wanted` (the port restored container sessions name),
 * else on a free port. When someone took the restored port while the daemon was down (and no port
 * was asked for explicitly), the container sessions that named it fail — their clients' URIs
 * cannot be served — rather than silently moving; new ones get the new port. Returns the port.
 */
export async function listenForCredentials(
  server: FastifyInstance,
  options: { wanted: number | undefined; explicit: boolean; restored: readonly Session[]; registry: SessionRegistry; logger: Logger },
): Promise<number> {
  const { wanted } = options;
  try {
    return await listenOnLoopback(server, wanted);
  } catch (error) {
    if (options.explicit || wanted === undefined || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    options.logger.error({ event: 'restore-port-taken', port: wanted }, 'the credential port of the restored sessions is taken');
    const port = await listenOnLoopback(server);
    for (const session of options.restored) {
      if (session.kind === 'ecs' && !session.fault) options.registry.markPortTaken(session, wanted, `the credential port ${wanted} was taken while the daemon was down`);
    }
    return port;
  }
}
