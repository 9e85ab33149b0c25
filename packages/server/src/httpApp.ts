import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { isLoopback } from './peerPid.js';
import { USER_NOT_ALLOWED_MESSAGE, type PeerUidDecision, type PeerUidGate } from './peerUid.js';
import { silentLogger, type Logger } from './logging.js';
import { errorBody, type WireErrorCode } from './wire.js';

/** Bounded header block (node allows 16 KiB): an SDK credential request needs well under 1 KiB. */
export const MAX_HEADER_BYTES = 8 * 1024;
/** A client that has not sent its headers within this is gone (slowloris); SDKs time out at 1–2 s. */
export const HEADERS_TIMEOUT_MS = 5_000;
/** The whole request, including a lazy session's first STS call. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** A fixed message for every token rejection, whatever was wrong with it. */
export const ACCESS_DENIED_MESSAGE = 'missing or invalid authorization token';

export interface HttpAppOptions {
  logger?: Logger | undefined;
  /** Request bodies above this are refused by fastify itself (the guards refuse any body first). */
  bodyLimit?: number;
  /** Replaces the default error handler (the control API maps VaultError codes). */
  errorHandler?: HttpErrorHandler;
  /**
   * Answers the hot request (a valid GET for cached credentials) before fastify routes it;
   * returns false to hand the request to fastify untouched. Only for real listeners: inject()
   * always goes through fastify.
   */
  fastPath?: (request: IncomingMessage, response: ServerResponse) => boolean;
  /**
   * Credential listeners: serve only connections this gate allows (the daemon's own user), decided
   * once per connection as it is accepted. A connection's first request waits for the decision;
   * the fast path serves only allowed connections, and every route refuses the others (403).
   */
  peerUids?: PeerUidGate;
}

/** Fastify's default; SDK clients reuse connections. */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

/**
 * How often node looks for connections past headersTimeout/requestTimeout. Node's default is
 * 30 s, which would let a slowloris client hold a connection for up to 35 s despite the 5 s bound.
 */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;

/**
 * What every vault listener's node:http server is created with. `requireHostHeader: false`: an
 * HTTP/1.1 request without Host would otherwise get node's own bodiless 400; our guards refuse it
 * (403 HOST_NOT_ALLOWED, JSON) like every other request with the wrong Host.
 */
const NODE_SERVER_OPTIONS = {
  maxHeaderSize: MAX_HEADER_BYTES,
  requireHostHeader: false,
  connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
} as const;

export type HttpError = Error & { statusCode?: number; code?: string; validation?: unknown };
export type HttpErrorHandler = (error: HttpError, request: FastifyRequest, reply: FastifyReply) => FastifyReply;

/**
 * A fastify instance with the settings every vault listener shares: no per-request logging (the
 * audit trail logs what matters), no automatic HEAD routes (HEAD is a method we refuse), bounded
 * headers and timeouts, and every error — fastify's own, node's client errors, unknown routes —
 * answered as JSON `{Code, Message}`. It never listens; a start function does.
 */
export function createHttpApp(options: HttpAppOptions = {}): FastifyInstance {
  const fastPath = options.fastPath;
  const gate = options.peerUids;
  const app = Fastify({
    loggerInstance: (options.logger ?? silentLogger()) as FastifyBaseLogger,
    logController: new Fastify.LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    return503OnClosing: true,
    requestIdHeader: false,
    bodyLimit: options.bodyLimit ?? 1024,
    requestTimeout: REQUEST_TIMEOUT_MS,
    http: { ...NODE_SERVER_OPTIONS },
    // ARNs in the role-arn route can be long; nothing else in a path is.
    routerOptions: { maxParamLength: 2200 },
    clientErrorHandler: jsonClientError,
    // Fastify would build a pino child per request to bind its id; nothing here logs per request
    // except the audit trail, and that child costs a third of the throughput.
    childLoggerFactory: (logger) => logger,
    ...(fastPath || gate
      ? {
          serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
            createServer({ ...NODE_SERVER_OPTIONS }, gate ? gatedRequests(gate, fastPath, handler) : (req, res) => {
              if (!fastPath!(req, res)) handler(req, res);
            }),
        }
      : {}),
  });
  if (gate) {
    app.server.on('connection', (socket: Socket) => gate.admit(socket));
    // Root hook, added before any route: it runs first, ahead of every token check.
    app.addHook('onRequest', (request, reply, done) => {
      const socket = request.raw.socket;
      const known = gate.decided(socket);
      if (known?.allowed === true) return done();
      // Refused by the gate too, but the shared guards say why more precisely (PEER_NOT_ALLOWED).
      if (!isLoopback(socket.remoteAddress)) return done();
      const refuse = (decision: PeerUidDecision) => {
        // Once per connection: the refusal closes it.
        request.log.warn({ event: 'peer-user-refused', client: { address: socket.remoteAddress, port: socket.remotePort }, uid: decision.uid }, 'refused a connection of another user');
        reply.header('connection', 'close');
        sendError(reply, 403, 'USER_NOT_ALLOWED', USER_NOT_ALLOWED_MESSAGE);
      };
      if (known !== undefined) return refuse(known);
      void gate.decide(socket).then((decision) => (decision.allowed ? done() : refuse(decision)));
    });
  }
  // Set here for both kinds of server: fastify applies its timeouts only to servers it creates.
  app.server.headersTimeout = HEADERS_TIMEOUT_MS;
  app.server.requestTimeout = REQUEST_TIMEOUT_MS;
  app.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Requests node answers by itself unless told otherwise: answered as JSON here too.
  app.server.on('checkExpectation', rejectExpectation);
  app.server.on('connect', rejectConnect);

  app.setErrorHandler(options.errorHandler ?? defaultErrorHandler);
  return app;
}

/**
 * A credential listener's request handler: a connection's first request waits for its uid
 * decision (made as the connection was accepted); the fast path answers only allowed connections,
 * fastify everything else (its root onRequest hook refuses the connections not allowed).
 */
function gatedRequests(
  gate: PeerUidGate,
  fastPath: HttpAppOptions['fastPath'],
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  const route = (req: IncomingMessage, res: ServerResponse, allowed: boolean) => {
    if (!allowed || !fastPath?.(req, res)) handler(req, res);
  };
  return (req, res) => {
    const known = gate.decided(req.socket);
    if (known !== undefined) return route(req, res, known.allowed);
    void gate.decide(req.socket).then((decision) => route(req, res, decision.allowed));
  };
}

/** Fastify's own errors (validation, body limits) and anything unexpected, as `{Code, Message}`. */
function defaultErrorHandler(error: HttpError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500;
  if (status >= 500) {
    request.log.error({ code: error.code, message: error.message }, 'request failed');
    return sendError(reply, 500, 'INTERNAL', 'internal error in the vault server');
  }
  const code: WireErrorCode =
    status === 413 ? 'BODY_NOT_ALLOWED' : status === 404 ? 'NOT_FOUND' : status === 405 ? 'METHOD_NOT_ALLOWED' : 'BAD_REQUEST';
  return sendError(reply, status, code, error.validation ? `invalid request: ${error.message}` : error.message);
}

/** Every rejection: JSON `{Code, Message}` with the given status. No CORS headers, ever. */
export function sendError(reply: FastifyReply, status: number, code: WireErrorCode | string, message: string, hint?: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(errorBody(code, message, hint));
}

/** Node's parser errors (oversized headers, timeouts, garbage) never reach fastify's routes. */
function jsonClientError(this: unknown, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let code: WireErrorCode = 'BAD_REQUEST';
  let message = 'malformed request';
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    code = 'HEADERS_TOO_LARGE';
    message = `request headers exceed ${MAX_HEADER_BYTES} bytes`;
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    code = 'REQUEST_TIMEOUT';
    message = 'request not received in time';
  }
  const body = JSON.stringify(errorBody(code, message));
  // As node itself does: answer only when no response is under way on this socket, and never
  // after one that closed the connection (leftover bytes of a refused request land here).
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (socket.writable && !socket.writableEnded && !inFlight?.headersSent) {
    socket.write(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/** `Expect` other than 100-continue: node would send a bodiless 417. */
function rejectExpectation(_request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(errorBody('EXPECTATION_FAILED', 'only Expect: 100-continue is supported'));
  response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), connection: 'close' });
  response.end(body);
}

/** CONNECT (a proxy tunnel): node would drop the connection without a word. */
function rejectConnect(_request: IncomingMessage, socket: Duplex): void {
  const body = JSON.stringify(errorBody('METHOD_NOT_ALLOWED', 'CONNECT is not allowed'));
  socket.on('error', () => undefined);
  socket.end(
    `HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * The guards every credential route shares after its token check, in this order:
 * loopback peer, exact Host (DNS rebinding), no browser (Origin), allowed method, no body.
 * Returns the first rejection or undefined. Shared by the fastify routes and the fast path, so
 * both refuse exactly the same requests.
 */
export function checkRequest(
  headers: IncomingHttpHeaders,
  method: string | undefined,
  remoteAddress: string | undefined,
  expectedHost: string,
  allowedMethod: string,
): Rejection | undefined {
  if (!isLoopback(remoteAddress)) {
    return { status: 403, code: 'PEER_NOT_ALLOWED', message: 'only clients on this machine (loopback) may ask for credentials' };
  }
  if (headers.host !== expectedHost) {
    return { status: 403, code: 'HOST_NOT_ALLOWED', message: `the Host header must be ${expectedHost}` };
  }
  // Browsers send Origin on every cross-origin request they let a page read. (Fetch-metadata
  // headers are no signal: Node's own fetch sends `Sec-Fetch-Mode: cors`.)
  if (headers.origin !== undefined) {
    return { status: 403, code: 'ORIGIN_NOT_ALLOWED', message: 'requests from web browsers are refused' };
  }
  if (method !== allowedMethod) {
    return { status: 405, code: 'METHOD_NOT_ALLOWED', message: `only ${allowedMethod} is allowed here`, allow: allowedMethod };
  }
  const length = headers['content-length'];
  if (headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
    return { status: 400, code: 'BODY_NOT_ALLOWED', message: 'credential requests carry no body' };
  }
  return undefined;
}

/** checkRequest for a fastify request. */
export function checkFastifyRequest(request: FastifyRequest, expectedHost: string, allowedMethod: string): Rejection | undefined {
  return checkRequest(request.headers, request.method, request.raw.socket.remoteAddress, expectedHost, allowedMethod);
}

export interface Rejection {
  status: number;
  code: WireErrorCode;
  message: string;
  allow?: string;
}

export function sendRejection(reply: FastifyReply, rejection: Rejection): FastifyReply {
  if (rejection.allow) reply.header('allow', rejection.allow);
  return sendError(reply, rejection.status, rejection.code, rejection.message);
}

/** Every method fastify routes, so that the guards (not a 404) answer the ones we refuse. */
export const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

/**
 * The not-found handler of a credential listener: methods it never serves get 405 (the guard
 * order does not matter there: no credential is behind an unknown path), other paths 404.
 */
export function notFound(allowedMethods: readonly string[]) {
  return (request: FastifyRequest, reply: FastifyReply) => {
    if (!allowedMethods.includes(request.method)) {
      reply.header('allow', allowedMethods.join(', '));
      return sendError(reply, 405, 'METHOD_NOT_ALLOWED', `method ${request.method} is not allowed`);
    }
    return sendError(reply, 404, 'NOT_FOUND', 'no such route');
  };
}
