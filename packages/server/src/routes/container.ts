import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isVaultError } from '@vault/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ACCESS_DENIED_MESSAGE, ALL_METHODS, checkFastifyRequest, checkRequest, sendError, sendRejection } from '../httpApp.js';
import type { AuditLog } from '../logging.js';
import type { PreparedCredentials } from '../sessions/refreshingCredentials.js';
import { isRoleArn, type Session } from '../sessions/session.js';
import { ecsCredentialsSchema, errorResponses } from '../wire.js';

/** Where the container routes find sessions (the SessionRegistry; tests may pass a Map). */
export interface SessionLookup {
  get(id: string): Session | undefined;
}

export interface ContainerRoutesOptions {
  sessions: SessionLookup;
  /** `127.0.0.1:PORT`, the address clients were given (a function: the port is known after listen). */
  expectedHost: () => string;
  audit: AuditLog;
}

/** The URL path of a session's container endpoint (a path: some SDKs drop a bare host). */
export function containerPath(sessionId: string): string {
  return `/creds/${sessionId}`;
}

interface SessionParams {
  id: string;
  '*'?: string;
}

const schema = {
  response: { 200: ecsCredentialsSchema, ...errorResponses },
};

/**
 * The ECS container credential routes:
 *   GET /creds/<id>                   the session's credentials
 *   GET /creds/<id>/role-arn/<ARN>    a role assumed from the session's credentials
 * Guards run in onRequest, before fastify reads a body: token first (403), then the shared checks.
 */
export async function containerRoutes(app: FastifyInstance, options: ContainerRoutesOptions): Promise<void> {
  const { sessions, expectedHost, audit } = options;

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const { id } = request.params as SessionParams;
    const session = sessions.get(id);
    // An unknown id gets the same answer as a wrong token: ids are not secret, but nothing
    // about sessions is told to a client that cannot prove it holds one.
    if (session === undefined || !session.tokenMatches(request.headers.authorization)) {
      sendError(reply, 403, 'ACCESS_DENIED', ACCESS_DENIED_MESSAGE);
      return;
    }
    const rejection = checkFastifyRequest(request, expectedHost(), 'GET');
    if (rejection) {
      sendRejection(reply, rejection);
      return;
    }
    done();
  });

  const served = (request: FastifyRequest, reply: FastifyReply, session: Session, prepared: PreparedCredentials, roleArn?: string) => {
    reply.header('content-type', 'application/json').header('cache-control', 'no-store').send(prepared.ecsBody());
    session.requestsServed++;
    audit.credentialsServed(request.raw.socket, session, roleArn ? 'ecs-role' : 'ecs', roleArn);
    return reply;
  };

  const unavailable = (reply: FastifyReply, error: unknown) => {
    // Session.unavailable already says what happened and what to run; SDKs retry on 5xx.
    const code = isVaultError(error) ? error.code : 'INTERNAL';
    const message = isVaultError(error) ? error.toLine() : 'no credentials are available';
    if (code === 'USAGE') return sendError(reply, 400, 'BAD_REQUEST', message);
    if (code === 'SESSION_NOT_FOUND') return sendError(reply, 404, code, message);
    return sendError(reply, 503, code, message);
  };

  app.route({
    method: [...ALL_METHODS],
    url: '/creds/:id',
    schema,
    handler(request, reply) {
      const session = sessions.get((request.params as SessionParams).id)!;
      const ready = session.currentCredentials();
      if (ready) return served(request, reply, session, ready);
      return session.credentialsFor().then(
        (prepared) => served(request, reply, session, prepared),
        (error: unknown) => unavailable(reply, error),
      );
    },
  });

  app.route({
    method: [...ALL_METHODS],
    url: '/creds/:id/role-arn/*',
    schema,
    handler(request, reply) {
      const params = request.params as SessionParams;
      const session = sessions.get(params.id)!;
      const roleArn = params['*'] ?? '';
      if (!isRoleArn(roleArn)) {
        return sendError(reply, 400, 'BAD_REQUEST', 'not a valid IAM role ARN (expected arn:aws:iam::123456789012:role/NAME)');
      }
      const ready = session.roleCredentialsNow(roleArn);
      if (ready) return served(request, reply, session, ready, roleArn);
      return session.roleCredentialsFor(roleArn).then(
        (prepared) => served(request, reply, session, prepared, roleArn),
        (error: unknown) => unavailable(reply, error),
      );
    },
  });
}

/** Session ids as newSessionId makes them; anything else is left to the fastify routes. */
const FAST_PATH_URL = /^\/creds\/[0-9a-f]{1,64}$/;

export interface ContainerFastPathOptions extends ContainerRoutesOptions {
  /** True once the app is closing: then fastify answers (503) instead. */
  closing: () => boolean;
}

/**
 * The hot request — `GET /creds/<id>` with the right token, passing every guard, credentials
 * cached — answered before fastify routes it: same token check, same checkRequest, same bytes and
 * headers as the fastify route. It only ever answers 200; anything it does not serve (a
 * rejection, a cold cache, a role-arn path) goes to fastify untouched, which decides and answers
 * it. Fastify's per-request machinery costs about as much as the whole bare node:http exchange,
 * and credential requests are the one path that must stay near bare speed.
 */
export function containerFastPath(options: ContainerFastPathOptions): (request: IncomingMessage, response: ServerResponse) => boolean {
  const { sessions, expectedHost, audit, closing } = options;
  return (request, response) => {
    if (request.method !== 'GET' || closing()) return false;
    const url = request.url;
    if (url === undefined || !FAST_PATH_URL.test(url)) return false;
    const session = sessions.get(url.slice(7));
    if (session === undefined || !session.tokenMatches(request.headers.authorization)) return false;
    if (checkRequest(request.headers, request.method, request.socket.remoteAddress, expectedHost(), 'GET')) return false;
    const ready = session.currentCredentials();
    if (ready === undefined) return false;
    const body = ready.ecsBody();
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': body.length });
    response.end(body);
    session.requestsServed++;
    audit.credentialsServed(request.socket, session, 'ecs');
    return true;
  };
}
