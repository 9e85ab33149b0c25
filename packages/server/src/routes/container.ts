import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isVaultError } from '@vault/core';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { ACCESS_DENIED_MESSAGE, ALL_METHODS, checkRequest, sendError, sendRejection, type Rejection } from '../httpApp.js';
import type { AuditLog, CredentialRoute } from '../logging.js';
import type { PeerSocket } from '../peerPid.js';
import type { PreparedCredentials } from '../sessions/refreshingCredentials.js';
import { isRoleArn, type Session } from '../sessions/session.js';
import { ecsCredentialsSchema, errorResponses } from '../wire.js';

/** Where the container routes find sessions (the SessionRegistry; tests may pass a Map). */
export interface SessionLookup {
  get(id: string): Session | undefined;
}

/** The checks after the token: which listener the route answers on decides them. */
export type RequestGuards = (headers: IncomingHttpHeaders, method: string | undefined, remoteAddress: string | undefined) => Rejection | undefined;

/**
 * The loopback listener's guards (checkRequest): loopback peer, exact Host, no Origin, GET, no
 * body. `expectedHost` is `127.0.0.1:PORT`, the address clients were given (a function: the port
 * is known after listen).
 */
export function loopbackGuards(expectedHost: () => string): RequestGuards {
  return (headers, method, remoteAddress) => checkRequest(headers, method, remoteAddress, expectedHost(), 'GET');
}

export interface ContainerRouteOptions {
  guards: RequestGuards;
  audit: AuditLog;
  /** The audit log's names for the two routes (the relay socket has its own). */
  routeNames?: { session: CredentialRoute; role: CredentialRoute };
  /** Who asked, for the audit log: the TCP peer, unless the listener knows better (the relay names the container). */
  peerOf?: (request: IncomingMessage) => PeerSocket;
}

export interface ContainerRoutesOptions {
  sessions: SessionLookup;
  /** The route's logic, shared with the listener's fast path. */
  route: ContainerCredentialRoute;
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

/** What a token the route does not accept gets: the same for a wrong token and an unknown id. */
const TOKEN_REFUSED: Rejection = { status: 403, code: 'ACCESS_DENIED', message: ACCESS_DENIED_MESSAGE };

/** The headers every container credential answer carries (plus its length). */
const CONTENT_TYPE = 'application/json';
const CACHE_CONTROL = 'no-store';

/**
 * The container credential route's logic, once. The fastify routes (every request) and the fast
 * path (the hot request, before fastify routes it) both call it, so they refuse the same requests,
 * send the same bytes and headers, and count and audit alike; they differ only in how the answer
 * is written (a fastify reply, or node's response).
 */
export class ContainerCredentialRoute {
  private readonly guards: RequestGuards;
  private readonly audit: AuditLog;
  private readonly routeNames: { session: CredentialRoute; role: CredentialRoute };
  private readonly peerOf: (request: IncomingMessage) => PeerSocket;

  constructor(options: ContainerRouteOptions) {
    this.guards = options.guards;
    this.audit = options.audit;
    this.routeNames = options.routeNames ?? { session: 'ecs', role: 'ecs-role' };
    this.peerOf = options.peerOf ?? ((request) => request.socket);
  }

  /**
   * Why this request may not have the session's credentials, or undefined: the token first (an
   * unknown id gets the same answer as a wrong token: ids are not secret, but nothing about
   * sessions is told to a client that cannot prove it holds one), then the shared guards.
   */
  refusal(session: Session | undefined, headers: IncomingHttpHeaders, method: string | undefined, remoteAddress: string | undefined): Rejection | undefined {
    if (session === undefined || !session.tokenMatches(headers.authorization)) return TOKEN_REFUSED;
    return this.guards(headers, method, remoteAddress);
  }

  /** The headers of an answer, for a fastify reply (which adds the length itself). */
  readonly headers = { 'content-type': CONTENT_TYPE, 'cache-control': CACHE_CONTROL } as const;

  /**
   * The headers of an answer of `length` bytes, for node's writeHead. A literal: spreading
   * `headers` into a new object per request made the fast path ~20× slower (measured).
   */
  headersFor(length: number): { 'content-type': string; 'cache-control': string; 'content-length': number } {
    return { 'content-type': CONTENT_TYPE, 'cache-control': CACHE_CONTROL, 'content-length': length };
  }

  /** The bytes of an answer: serialized once per set of credentials (PreparedCredentials keeps them). */
  body(prepared: PreparedCredentials): Buffer {
    return prepared.ecsBody();
  }

  /** After an answer is sent: the session counts it, the audit trail notes it. */
  served(request: IncomingMessage, session: Session, roleArn?: string): void {
    session.requestsServed++;
    const route = roleArn === undefined ? this.routeNames.session : this.routeNames.role;
    this.audit.credentialsServed(this.peerOf(request), session, route, roleArn);
  }

  /**
   * The answer when no credentials could be had: Session.unavailable already says what happened
   * and what to run; SDKs retry on 5xx.
   */
  unavailable(error: unknown): { status: number; code: string; message: string } {
    const code = isVaultError(error) ? error.code : 'INTERNAL';
    const message = isVaultError(error) ? error.toLine() : 'no credentials are available';
    if (code === 'USAGE') return { status: 400, code: 'BAD_REQUEST', message };
    if (code === 'SESSION_NOT_FOUND') return { status: 404, code, message };
    return { status: 503, code, message };
  }
}

/**
 * The ECS container credential routes:
 *   GET /creds/<id>                   the session's credentials
 *   GET /creds/<id>/role-arn/<ARN>    a role assumed from the session's credentials
 * The route's refusal runs in onRequest, before fastify reads a body.
 */
export async function containerRoutes(app: FastifyInstance, options: ContainerRoutesOptions): Promise<void> {
  const { sessions, route } = options;

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const session = sessions.get((request.params as SessionParams).id);
    const rejection = route.refusal(session, request.headers, request.method, request.raw.socket.remoteAddress);
    if (rejection) {
      sendRejection(reply, rejection);
      return;
    }
    done();
  });

  const served = (request: FastifyRequest, reply: FastifyReply, session: Session, prepared: PreparedCredentials, roleArn?: string) => {
    reply.headers(route.headers).send(route.body(prepared));
    route.served(request.raw, session, roleArn);
    return reply;
  };

  const unavailable = (reply: FastifyReply, error: unknown) => {
    const { status, code, message } = route.unavailable(error);
    return sendError(reply, status, code, message);
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
 * The hot request — `GET /creds/<id>` that the route would serve at once, credentials cached —
 * answered before fastify routes it, through the same ContainerCredentialRoute. It only ever
 * answers 200; anything it does not serve (a refusal, a cold cache, a role-arn path) goes to
 * fastify untouched, which decides and answers it. Fastify's per-request machinery costs about as
 * much as the whole bare node:http exchange, and credential requests are the one path that must
 * stay near bare speed.
 */
export function containerFastPath(options: ContainerFastPathOptions): (request: IncomingMessage, response: ServerResponse) => boolean {
  const { sessions, route, closing } = options;
  return (request, response) => {
    if (request.method !== 'GET' || closing()) return false;
    const url = request.url;
    if (url === undefined || !FAST_PATH_URL.test(url)) return false;
    const session = sessions.get(url.slice(7));
    if (route.refusal(session, request.headers, request.method, request.socket.remoteAddress) !== undefined) return false;
    const ready = session!.currentCredentials();
    if (ready === undefined) return false;
    const body = route.body(ready);
    response.writeHead(200, route.headersFor(body.length));
    response.end(body);
    route.served(request, session!);
    return true;
  };
}
