import type { FastifyInstance } from 'fastify';
import type { CreateSessionRequest, SessionRegistry } from '../sessions/sessionRegistry.js';
import { createdSessionSchema, createSessionBodySchema, envSchema, idParams, renewBodySchema, routeSchema, sessionSummarySchema, stoppedSchema } from './schemas.js';
import type { SessionViews } from './sessionViews.js';
import type { CreatedSession, CreateSessionBody, RenewSessionBody, SessionEnvResponse } from './types.js';

/**
 * The daemon sessions' routes: start one (`POST /sessions`), list, show, its variables (the token:
 * only on this socket), stop one or all, renew.
 */
export function sessionRoutes(app: FastifyInstance, registry: SessionRegistry, views: SessionViews): void {
  const { summarize, environment } = views;

  app.post('/sessions', {
    schema: routeSchema({ 201: createdSessionSchema }, { body: createSessionBodySchema }),
    handler: async (request, reply): Promise<CreatedSession> => {
      const body = request.body as CreateSessionBody;
      const createRequest: CreateSessionRequest = { profile: body.profile, kind: body.kind };
      if (body.mfaToken !== undefined) createRequest.mfaToken = body.mfaToken;
      if (body.durationSeconds !== undefined) createRequest.durationSeconds = body.durationSeconds;
      if (body.region !== undefined) createRequest.region = body.region;
      if (body.lazy !== undefined) createRequest.lazy = body.lazy;
      if (body.noSession === true) createRequest.noSession = true;
      if (body.ownerPid !== undefined) createRequest.ownerPid = body.ownerPid;
      const session = await registry.create(createRequest);
      reply.code(201);
      return { ...summarize(session), token: session.token, env: environment(session) };
    },
  });

  app.get('/sessions', {
    schema: routeSchema({
      200: { type: 'object', additionalProperties: false, properties: { sessions: { type: 'array', items: sessionSummarySchema } } },
    }),
    handler: async () => ({ sessions: registry.list().map(summarize) }),
  });

  app.delete('/sessions', {
    schema: routeSchema({ 200: stoppedSchema }),
    handler: async () => ({ stopped: await registry.stopAll() }),
  });

  app.get('/sessions/:id', {
    schema: routeSchema({ 200: sessionSummarySchema }, { params: idParams }),
    handler: async (request) => summarize(registry.require((request.params as { id: string }).id)),
  });

  app.get('/sessions/:id/env', {
    schema: routeSchema(
      {
        200: {
          type: 'object',
          additionalProperties: false,
          properties: {
            id: { type: 'string' },
            profile: { type: 'string' },
            kind: { type: 'string' },
            uri: { type: 'string' },
            imdsEndpoint: { type: 'string' },
            token: { type: 'string' },
            env: envSchema,
          },
        },
      },
      { params: idParams },
    ),
    handler: async (request): Promise<SessionEnvResponse> => {
      const session = registry.require((request.params as { id: string }).id);
      const summary = summarize(session);
      return {
        id: session.id,
        profile: session.profile,
        kind: session.kind,
        uri: summary.uri,
        ...(summary.imdsEndpoint ? { imdsEndpoint: summary.imdsEndpoint } : {}),
        token: session.token,
        env: environment(session),
      };
    },
  });

  app.delete('/sessions/:id', {
    schema: routeSchema({ 200: stoppedSchema }, { params: idParams }),
    handler: async (request) => {
      const session = await registry.stop((request.params as { id: string }).id);
      return { stopped: [session.id] };
    },
  });

  app.post('/sessions/:id/renew', {
    schema: routeSchema({ 200: sessionSummarySchema }, { params: idParams, body: renewBodySchema }),
    handler: async (request) => {
      const body = (request.body ?? {}) as RenewSessionBody;
      const session = await registry.renew((request.params as { id: string }).id, body.mfaToken);
      return summarize(session);
    },
  });
}
