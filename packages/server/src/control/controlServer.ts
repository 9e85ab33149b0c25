import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hostHeaderFor, type PortSource } from '../buildServer.js';
import { createHttpApp, sendError } from '../httpApp.js';
import type { Logger } from '../logging.js';
import type { SessionRegistry } from '../sessions/sessionRegistry.js';
import { controlErrorHandler } from './controlErrors.js';
import { credentialsRoute } from './credentialsRoute.js';
import { profileCredentialsRoute } from './profileCredentialsRoute.js';
import { sessionRoutes } from './sessionRoutes.js';
import { sessionViews } from './sessionViews.js';
import { shutdownRoute } from './shutdownRoute.js';
import { statusRoute } from './statusRoute.js';

export interface ControlServerOptions {
  registry: SessionRegistry;
  /** Port of the credential listener, for session URIs. */
  port: PortSource;
  logger?: Logger;
  /** When the daemon started (epoch ms, on the registry's clock). */
  startedAt?: number;
  /** Called after `POST /shutdown` has been answered. */
  onShutdown?: () => void;
}

/**
 * The CLI's view of the daemon, on a Unix socket (0600 in a 0700 directory), never on TCP:
 *   GET    /status                         statusRoute.ts
 *   POST   /sessions                       CreateSessionBody → 201 CreatedSession   (sessionRoutes.ts)
 *   GET    /sessions                       { sessions: SessionSummary[] }
 *   DELETE /sessions                       stop all → { stopped: [ids] }
 *   GET    /sessions/:id                   SessionSummary
 *   GET    /sessions/:id/env               SessionEnvResponse (the token: only on this socket)
 *   DELETE /sessions/:id                   { stopped: [id] }
 *   POST   /sessions/:id/renew             RenewSessionBody → SessionSummary
 *   GET    /sessions/by-profile/:profile/credentials   ProfileCredentialsResponse (profileCredentialsRoute.ts)
 *   POST   /credentials                    ResolveCredentialsBody → ResolvedCredentialsResponse (credentialsRoute.ts)
 *   POST   /shutdown                       202 { stopping: true }   (shutdownRoute.ts)
 * Errors are `{Code, Message, Hint?}` with the VaultError code (controlErrors.ts).
 */
export function buildControlServer(options: ControlServerOptions): FastifyInstance {
  const { registry } = options;
  const startedAt = options.startedAt ?? registry.clock.now();
  const app = createHttpApp({ logger: options.logger ?? registry.logger, bodyLimit: 16 * 1024, errorHandler: controlErrorHandler });
  const views = sessionViews(registry.clock, hostHeaderFor(options.port));

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendError(reply, 404, 'NOT_FOUND', `no control route ${request.method} ${request.url.split('?')[0]}`),
  );

  statusRoute(app, { registry, port: options.port, startedAt });
  sessionRoutes(app, registry, views);
  profileCredentialsRoute(app, registry);
  credentialsRoute(app, registry);
  shutdownRoute(app, options.onShutdown);

  return app;
}
