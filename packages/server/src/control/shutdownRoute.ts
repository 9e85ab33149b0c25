import type { FastifyInstance } from 'fastify';
import { routeSchema } from './schemas.js';

/** `POST /shutdown`: answered 202 first; `onShutdown` runs once the answer is on its way. */
export function shutdownRoute(app: FastifyInstance, onShutdown: (() => void) | undefined): void {
  app.post('/shutdown', {
    schema: routeSchema({ 202: { type: 'object', additionalProperties: false, properties: { stopping: { type: 'boolean' } } } }),
    handler: async (_request, reply) => {
      reply.code(202);
      // After the answer is on its way: stopping closes this very server.
      reply.raw.once('finish', () => setImmediate(() => onShutdown?.()));
      return { stopping: true };
    },
  });
}
