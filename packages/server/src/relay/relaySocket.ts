import { unlinkSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isVaultError } from '@vault/core';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { ACCESS_DENIED_MESSAGE, ALL_METHODS, createHttpApp, notFound, sendError, sendRejection, type Rejection } from '../httpApp.js';
import type { AuditLog, CredentialRoute, Logger } from '../logging.js';
import type { PeerSocket } from '../peerPid.js';
import { listenOnPrivateSocket } from '../privateSocket.js';
import type { SessionLookup } from '../routes/container.js';
import type { PreparedCredentials } from '../sessions/refreshingCredentials.js';
import { isRoleArn, type Session } from '../sessions/session.js';
import { RELAY_CLIENT_HEADER, RELAY_HELLO, RELAY_HELLO_PATH } from './relayProtocol.js';
import { ecsCredentialsSchema, errorResponses } from '../wire.js';

/** Session ids as newSessionId makes them (as the loopback listener's fast path). */
const FAST_PATH_URL = /^\/creds\/[0-9a-f]{1,64}$/;

/**
 * The guards after the token check, in the loopback listener's order (checkRequest), less the two
 * that have no meaning on a Unix socket: no Origin, GET only, no body.
 */
export function relayRejection(headers: IncomingHttpHeaders, method: string | undefined): Rejection | undefined {
  if (headers.origin !== undefined) return { status: 403, code: 'ORIGIN_NOT_ALLOWED', message: 'requests from web browsers are refused' };
  if (method !== 'GET') return { status: 405, code: 'METHOD_NOT_ALLOWED', message: 'only GET is allowed here', allow: 'GET' };
  const length = headers['content-length'];
  if (headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
    return { status: 400, code: 'BODY_NOT_ALLOWED', message: 'credential requests carry no body' };
  }
  return undefined;
}

export interface RelaySocketOptions {
  sessions: SessionLookup;
  audit: AuditLog;
  logger?: Logger;
}

interface SessionParams {
  id: string;
  '*'?: string;
}

const schema = { response: { 200: ecsCredentialsSchema, ...errorResponses } };

/** Distinct container addresses whose audit bindings are kept (a /24 network holds 254). */
const MAX_CLIENTS = 1024;
const CLIENT = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/;

/**
 * The container a relayed request came from, as the audit log's PeerSocket. No remotePort: the
 * pid lookup is for loopback TCP peers on this host, and a container's process is not one. One
 * object per address, so that the audit log's per-connection line cache works across requests.
 */
function relayedClients(): (header: string | string[] | undefined) => PeerSocket {
  const known = new Map<string, PeerSocket>();
  const unknown: PeerSocket = { remoteAddress: 'relay' };
  return (header) => {
    const match = typeof header === 'string' ? CLIENT.exec(header) : null;
    if (!match) return unknown;
    const address = `relay:${match[1]}`;
    let peer = known.get(address);
    if (!peer) {
      if (known.size >= MAX_CLIENTS) known.clear();
      peer = { remoteAddress: address };
      known.set(address, peer);
    }
    return peer;
  };
}

/**
 * The relay socket's server: the container credential routes only, for `vault relay`.
 *   GET /creds/<id>                   the session's credentials
 *   GET /creds/<id>/role-arn/<ARN>    a role assumed from the session's credentials
 *   GET /relay                        RELAY_HELLO (no session, nothing secret)
 * Nothing of the control API is routed here: a container that is handed this socket can at most
 * ask for the credentials of a session whose token it holds, as it could through the relay.
 *
 * Guards, in the order of the loopback listener's (token first, then the shared checks): the
 * session's token (403), no Origin, GET only, no body. The loopback and Host guards of the TCP
 * listener have no meaning on a Unix socket (no address; no browser can address a socket file);
 * the relay applies the Host guard for the address containers reach it at.
 */
export function buildRelaySocketServer(options: RelaySocketOptions): FastifyInstance {
  const { sessions, audit } = options;
  const logger = options.logger ?? audit.logger;
  const clientOf = relayedClients();
  let closing = false;
  // As containerFastPath on the loopback listener: the hot request (valid, credentials cached) is
  // answered before fastify routes it, with the same checks and bytes; anything else goes to the
  // fastify routes below, which decide and answer it.
  const fastPath = (request: IncomingMessage, response: ServerResponse): boolean => {
    if (request.method !== 'GET' || closing) return false;
    const url = request.url;
    if (url === undefined || !FAST_PATH_URL.test(url)) return false;
    const session = sessions.get(url.slice(7));
    if (session === undefined || !session.tokenMatches(request.headers.authorization)) return false;
    if (relayRejection(request.headers, request.method)) return false;
    const ready = session.currentCredentials();
    if (ready === undefined) return false;
    const body = ready.ecsBody();
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': body.length });
    response.end(body);
    session.requestsServed++;
    audit.credentialsServed(clientOf(request.headers[RELAY_CLIENT_HEADER]), session, 'ecs-relay');
    return true;
  };
  const app = createHttpApp({ logger, fastPath });
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.setNotFoundHandler(notFound(['GET']));

  app.get(RELAY_HELLO_PATH, (_request, reply) => reply.header('cache-control', 'no-store').send(RELAY_HELLO));

  const guard = (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const { id } = request.params as SessionParams;
    const session = sessions.get(id);
    if (session === undefined || !session.tokenMatches(request.headers.authorization)) {
      sendError(reply, 403, 'ACCESS_DENIED', ACCESS_DENIED_MESSAGE);
      return;
    }
    const rejection = relayRejection(request.headers, request.method);
    if (rejection) {
      sendRejection(reply, rejection);
      return;
    }
    done();
  };

  const served = (request: FastifyRequest, reply: FastifyReply, session: Session, prepared: PreparedCredentials, roleArn?: string) => {
    reply.header('content-type', 'application/json').header('cache-control', 'no-store').send(prepared.ecsBody());
    session.requestsServed++;
    const route: CredentialRoute = roleArn ? 'ecs-role-relay' : 'ecs-relay';
    audit.credentialsServed(clientOf(request.headers[RELAY_CLIENT_HEADER]), session, route, roleArn);
    return reply;
  };

  const unavailable = (reply: FastifyReply, error: unknown) => {
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
    onRequest: guard,
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
    onRequest: guard,
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
  return app;
}

export interface RelaySocket {
  readonly path: string;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/**
 * Listens on `relay.sock` in the state directory (DaemonPaths.relaySocket) (0600, like the control socket: only the
 * daemon's user, or a container running as that uid with the file bind-mounted, can connect).
 * A socket file already there was left by a daemon that did not stop cleanly: the caller holds the
 * pid file (startDaemon), so it is removed.
 */
export async function openRelaySocket(path: string, options: RelaySocketOptions): Promise<RelaySocket> {
  const app = buildRelaySocketServer(options);
  await app.ready();
  removeQuietly(path);
  try {
    await listenOnPrivateSocket(app, path);
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  return {
    path,
    app,
    close: async () => {
      await app.close();
      removeQuietly(path);
    },
  };
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
