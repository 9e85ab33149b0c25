import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatExpiration, isVaultError, VaultError, type VaultErrorCode } from '@vault/core';
import { hostHeaderFor, LISTEN_HOST, type PortSource } from '../buildServer.js';
import { createHttpApp, sendError, type HttpError } from '../httpApp.js';
import type { Logger } from '../logging.js';
import { credentialsRoute, liveSessionCredentials } from './credentialsRoute.js';
import { containerPath } from '../routes/container.js';
import type { CreateSessionRequest, SessionRegistry } from '../sessions/sessionRegistry.js';
import type { Session } from '../sessions/session.js';
import { SERVER_VERSION } from '../version.js';
import { errorResponses } from '../wire.js';
import type {
  CreatedSession,
  CreateSessionBody,
  DaemonStatus,
  ProfileCredentialsResponse,
  RenewSessionBody,
  SessionEnvironment,
  SessionEnvResponse,
  SessionSummary,
} from './types.js';

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

/** Which HTTP status a VaultError code maps to on the control API. */
export function statusForCode(code: string): number {
  switch (code as VaultErrorCode) {
    case 'USAGE':
    case 'CONFIG_PARSE':
    case 'PROFILE_CYCLE':
    case 'PROFILE_INVALID':
    case 'PROFILE_NO_CREDENTIALS':
    case 'NESTED_VAULT':
      return 400;
    case 'MFA_REQUIRED':
    case 'MFA_INVALID':
    case 'SESSION_NEEDS_MFA':
    case 'SSO_LOGIN_REQUIRED':
    case 'DAEMON_MISMATCH':
      return 409;
    case 'STS_ACCESS_DENIED':
    case 'STS_INVALID_CLIENT_TOKEN':
    case 'STS_EXPIRED_TOKEN':
      return 403;
    case 'PROFILE_NOT_FOUND':
    case 'KEY_NOT_FOUND':
    case 'SESSION_NOT_FOUND':
      return 404;
    case 'KEYRING_LOCKED':
      return 423;
    case 'STS_THROTTLED':
      return 429;
    case 'STS_UNAVAILABLE':
    case 'STS_FAILED':
      return 502;
    case 'DAEMON_UNAVAILABLE':
      return 503;
    default:
      return 500;
  }
}

const port12 = { type: 'integer', minimum: 1 } as const;

const sessionSummaryProperties = {
  id: { type: 'string' },
  profile: { type: 'string' },
  kind: { type: 'string' },
  state: { type: 'string' },
  lazy: { type: 'boolean' },
  noSession: { type: 'boolean' },
  uri: { type: 'string' },
  imdsEndpoint: { type: 'string' },
  region: { type: 'string' },
  createdAt: { type: 'string' },
  requestsServed: { type: 'integer' },
  credentialExpiration: { type: 'string' },
  credentialSecondsLeft: { type: 'integer' },
  mfaExpiration: { type: 'string' },
  mfaSecondsLeft: { type: 'integer' },
  refreshFailures: { type: 'integer' },
  nextRetryAt: { type: 'string' },
  lastError: {
    type: 'object',
    additionalProperties: false,
    properties: { code: { type: 'string' }, message: { type: 'string' }, at: { type: 'string' } },
  },
} as const;

/** A summary has no token and no secret: the serializer drops anything not listed here. */
const sessionSummarySchema = { type: 'object', additionalProperties: false, properties: sessionSummaryProperties } as const;
const envSchema = { type: 'object', additionalProperties: { type: 'string' } } as const;
const createdSessionSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { ...sessionSummaryProperties, token: { type: 'string' }, env: envSchema },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{1,64}$' } },
} as const;

const createSessionBodySchema = {
  type: 'object',
  required: ['profile', 'kind'],
  additionalProperties: false,
  properties: {
    profile: { type: 'string', minLength: 1, maxLength: 256 },
    mfaToken: { type: 'string', minLength: 1, maxLength: 64 },
    // AssumeRole accepts 15 min to 12 h.
    durationSeconds: { type: 'integer', minimum: 900, maximum: 43_200 },
    region: { type: 'string', pattern: '^[a-z0-9-]{1,32}$' },
    kind: { type: 'string', enum: ['ecs', 'imds'] },
    lazy: { type: 'boolean' },
    noSession: { type: 'boolean' },
    ownerPid: { type: 'integer', minimum: 1, maximum: 4_194_304 },
  },
} as const;

const renewBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { mfaToken: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The CLI's view of the daemon, on a Unix socket (0600 in a 0700 directory), never on TCP:
 *   GET    /status
 *   POST   /sessions                       CreateSessionBody → 201 CreatedSession
 *   GET    /sessions                       { sessions: SessionSummary[] }
 *   DELETE /sessions                       stop all → { stopped: [ids] }
 *   GET    /sessions/:id                   SessionSummary
 *   GET    /sessions/:id/env               SessionEnvResponse (the token: only on this socket)
 *   DELETE /sessions/:id                   { stopped: [id] }
 *   POST   /sessions/:id/renew             RenewSessionBody → SessionSummary
 *   GET    /sessions/by-profile/:profile/credentials   ProfileCredentialsResponse
 *   POST   /shutdown                       202 { stopping: true }
 * Errors are `{Code, Message, Hint?}` with the VaultError code.
 */
export function buildControlServer(options: ControlServerOptions): FastifyInstance {
  const { registry } = options;
  const clock = registry.clock;
  const startedAt = options.startedAt ?? clock.now();
  const app = createHttpApp({ logger: options.logger ?? registry.logger, bodyLimit: 16 * 1024, errorHandler: controlErrorHandler });
  const credentialHost = hostHeaderFor(options.port);

  const baseUrl = () => `http://${credentialHost()}`;

  const summarize = (session: Session): SessionSummary => {
    const now = clock.now();
    const summary: SessionSummary = {
      id: session.id,
      profile: session.profile,
      kind: session.kind,
      state: session.state,
      lazy: session.lazy,
      uri: `${baseUrl()}${containerPath(session.id)}`,
      createdAt: iso(session.createdAt),
      requestsServed: session.requestsServed,
      refreshFailures: session.credentials.failures,
    };
    if (session.imds) summary.imdsEndpoint = `http://${LISTEN_HOST}:${session.imds.port}/`;
    if (session.region) summary.region = session.region;
    if (session.request.noSession) summary.noSession = true;
    const latest = session.credentials.latest;
    if (latest) {
      summary.credentialExpiration = formatExpiration(new Date(latest.expiresAt));
      summary.credentialSecondsLeft = Math.max(0, Math.floor((latest.expiresAt - now) / 1000));
    }
    const mfa = session.mfaExpiration();
    if (mfa) {
      summary.mfaExpiration = formatExpiration(mfa);
      summary.mfaSecondsLeft = Math.max(0, Math.floor((mfa.getTime() - now) / 1000));
    }
    if (session.credentials.nextAttemptAt > now) summary.nextRetryAt = iso(session.credentials.nextAttemptAt);
    const lastError = session.lastError;
    if (lastError) summary.lastError = { code: lastError.code, message: lastError.message, at: iso(lastError.at) };
    return summary;
  };

  const environment = (session: Session): SessionEnvironment => {
    const env: SessionEnvironment = {};
    if (session.kind === 'imds' && session.imds) {
      // The trailing slash matters: the AWS CLI v2's bundled botocore appends `latest/api/token` to
      // the endpoint without a separator; every other SDK accepts it.
      env.AWS_EC2_METADATA_SERVICE_ENDPOINT = `http://${LISTEN_HOST}:${session.imds.port}/`;
      // botocore's IMDS client honours proxies; both spellings because either may win.
      env.NO_PROXY = LISTEN_HOST;
      env.no_proxy = LISTEN_HOST;
    } else {
      env.AWS_CONTAINER_CREDENTIALS_FULL_URI = `${baseUrl()}${containerPath(session.id)}`;
      env.AWS_CONTAINER_AUTHORIZATION_TOKEN = session.token;
    }
    if (session.region) {
      env.AWS_REGION = session.region;
      env.AWS_DEFAULT_REGION = session.region;
    }
    env.AWS_VAULT = session.profile;
    return env;
  };

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendError(reply, 404, 'NOT_FOUND', `no control route ${request.method} ${request.url.split('?')[0]}`),
  );

  const routeSchema = (response: object, extra: Record<string, unknown> = {}) => ({ response: { ...response, ...errorResponses }, ...extra });

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
        startedAt: iso(startedAt),
        uptimeSeconds: Math.max(0, Math.floor((clock.now() - startedAt) / 1000)),
        sessions: registry.size,
        version: SERVER_VERSION,
      };
    },
  });

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

  app.get('/sessions/by-profile/:profile/credentials', {
    schema: routeSchema({
      200: {
        type: 'object',
        additionalProperties: false,
        properties: {
          sessionId: { type: 'string' },
          profile: { type: 'string' },
          region: { type: 'string' },
          accessKeyId: { type: 'string' },
          secretAccessKey: { type: 'string' },
          sessionToken: { type: 'string' },
          expiration: { type: 'string' },
        },
      },
    }),
    handler: async (request): Promise<ProfileCredentialsResponse> => {
      const profile = (request.params as { profile: string }).profile;
      const live = await liveSessionCredentials(registry, profile);
      if (!live) {
        throw new VaultError('SESSION_NOT_FOUND', `no daemon session for profile ${profile}`, {
          hint: `start one with \`vault session start ${profile}\``,
        });
      }
      const { source: _source, sessionId, ...credentials } = live;
      return { sessionId: sessionId!, ...credentials };
    },
  });

  credentialsRoute(app, registry);

  app.post('/shutdown', {
    schema: routeSchema({ 202: { type: 'object', additionalProperties: false, properties: { stopping: { type: 'boolean' } } } }),
    handler: async (_request, reply) => {
      reply.code(202);
      // After the answer is on its way: stopping closes this very server.
      reply.raw.once('finish', () => setImmediate(() => options.onShutdown?.()));
      return { stopping: true };
    },
  });

  return app;
}

/** VaultErrors keep their code (and hint); fastify's validation errors are USAGE. */
function controlErrorHandler(error: HttpError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isVaultError(error)) {
    const status = statusForCode(error.code);
    if (status >= 500) request.log.warn({ code: error.code, message: error.message }, 'control request failed');
    return sendError(reply, status, error.code, error.message, error.hint);
  }
  if (error.validation) return sendError(reply, 400, 'USAGE', `invalid request: ${error.message}`);
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
  if (status === 500) {
    request.log.error({ code: error.code, message: error.message }, 'control request failed');
    return sendError(reply, 500, 'INTERNAL', 'internal error in the vault daemon');
  }
  return sendError(reply, status, status === 404 ? 'NOT_FOUND' : 'USAGE', error.message);
}

const stoppedSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { stopped: { type: 'array', items: { type: 'string' } } },
} as const;
