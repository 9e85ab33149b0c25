import { unlinkSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { createHttpApp, notFound, type Rejection } from '../httpApp.js';
import type { AuditLog, Logger } from '../logging.js';
import type { PeerSocket } from '../peerPid.js';
import { listenOnPrivateSocket } from '../privateSocket.js';
import { ContainerCredentialRoute, containerFastPath, containerRoutes, type SessionLookup } from '../routes/container.js';
import { RELAY_CLIENT_HEADER, RELAY_HELLO, RELAY_HELLO_PATH } from './relayProtocol.js';

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
  // The loopback listener's ContainerCredentialRoute, fast path and fastify routes, with the
  // relay's guards, its audit names and the container's address as the client.
  const route = new ContainerCredentialRoute({
    guards: relayRejection,
    audit,
    routeNames: { session: 'ecs-relay', role: 'ecs-role-relay' },
    peerOf: (request) => clientOf(request.headers[RELAY_CLIENT_HEADER]),
  });
  let closing = false;
  const fastPath = containerFastPath({ sessions, route, closing: () => closing });
  const app = createHttpApp({ logger, fastPath });
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.setNotFoundHandler(notFound(['GET']));
  app.get(RELAY_HELLO_PATH, (_request, reply) => reply.header('cache-control', 'no-store').send(RELAY_HELLO));
  void app.register(containerRoutes, { sessions, route });
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
