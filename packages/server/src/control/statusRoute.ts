import type { FastifyInstance } from 'fastify';
import type { PortSource } from '../buildServer.js';
import type { SessionRegistry } from '../sessions/sessionRegistry.js';
import { SERVER_VERSION } from '../version.js';
import { port12, routeSchema } from './schemas.js';
import type { DaemonStatus } from './types.js';

/** `GET /status`: the daemon's pid, credential port, uptime, session count and version. */
export function statusRoute(app: FastifyInstance, options: { registry: SessionRegistry; port: PortSource; startedAt: number }): void {
  const { registry, startedAt } = options;
  const clock = registry.clock;
  app.get('/status', {
    schema: routeSchema({
      200: {
        type: 'object',
        additionalProperties: false,
        properties: {
          pid: { type: 'integer' },
          port: port12,
          startedAt: { type: 'string' },
          uptimeSeconds: { type: 'integer' },
          sessions: { type: 'integer' },
          version: { type: 'string' },
        },
      },
    }),
    handler: async (): Promise<DaemonStatus> => {
      const port = typeof options.port === 'number' ? options.port : options.port();
      return {
        pid: process.pid,
        port,
        startedAt: new Date(startedAt).toISOString(),
        uptimeSeconds: Math.max(0, Math.floor((clock.now() - startedAt) / 1000)),
        sessions: registry.size,
        version: SERVER_VERSION,
      };
    },
  });
}
