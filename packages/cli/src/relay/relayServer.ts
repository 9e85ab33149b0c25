import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { VaultError } from '@vault/core';
import { RELAY_CLIENT_HEADER, RELAYED_PATH } from '@vault/server/relay';

/** Where ECS tasks find their credential endpoint; SDKs allow plain http there (see docs/credential-server.md). */
export const DEFAULT_LISTEN = '169.254.170.2:80';

/** As the daemon's listeners (packages/server/src/httpApp.ts): an SDK credential request needs well under 1 KiB. */
const MAX_HEADER_BYTES = 8 * 1024;
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** A credentials document is under 2 KiB; anything far larger is not the daemon's answer. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface ListenAddress {
  host: string;
  port: number;
  /** The Host header values a client of this address sends: `HOST:PORT`, and `HOST` alone on port 80. */
  hosts: ReadonlySet<string>;
  /** `HOST:PORT` as said to people (`[v6]:PORT`). */
  text: string;
}

/** `ADDRESS:PORT` (`[V6]:PORT` for IPv6); a literal address, since Host headers are compared with it. */
export function parseListen(value: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!match || host === undefined || isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new VaultError('USAGE', `--listen "${value}" is not ADDRESS:PORT`, { hint: `give an IP address and a port, e.g. --listen ${DEFAULT_LISTEN}` });
  }
  const named = isIP(host) === 6 ? `[${host}]` : host;
  const text = `${named}:${port}`;
  return { host, port, hosts: new Set(port === 80 ? [text, named] : [text]), text };
}

function refuse(response: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({ Code: code, Message: message });
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...extra,
  });
  response.end(body);
}

/**
 * Why a container's request is not forwarded, or undefined: only `GET` of a container route, no
 * body, no browser, and the Host of the address it was sent to (DNS rebinding: a page that makes a
 * name resolve to 169.254.170.2 still sends its own name).
 */
export function relayRefusal(request: IncomingMessage, listen: ListenAddress): { status: number; code: string; message: string; allow?: string } | undefined {
  const url = request.url ?? '';
  if (!RELAYED_PATH.test(url)) return { status: 404, code: 'NOT_FOUND', message: 'the relay forwards only the container credential route (/creds/ID)' };
  if (request.headers.host === undefined || !listen.hosts.has(request.headers.host)) {
    return { status: 403, code: 'HOST_NOT_ALLOWED', message: `the Host header must be ${listen.text}` };
  }
  if (request.headers.origin !== undefined) return { status: 403, code: 'ORIGIN_NOT_ALLOWED', message: 'requests from web browsers are refused' };
  if (request.method !== 'GET') return { status: 405, code: 'METHOD_NOT_ALLOWED', message: 'only GET is allowed here', allow: 'GET' };
  const length = request.headers['content-length'];
  if (request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
    return { status: 400, code: 'BODY_NOT_ALLOWED', message: 'credential requests carry no body' };
  }
  return undefined;
}

function clientOf(socket: Socket): string {
  const address = socket.remoteAddress ?? '';
  return `${isIP(address) === 6 ? `[${address}]` : address}:${socket.remotePort ?? 0}`;
}

export interface RelayServer {
  readonly server: Server;
  readonly address: ListenAddress;
  close(): Promise<void>;
}

/**
 * Listens on `listen` and forwards each allowed request to the daemon's relay socket: the path,
 * the Authorization header and who asked, nothing else of the container's request. The daemon
 * checks the token and writes the audit line; the relay keeps no credential and logs nothing
 * per request.
 */
export async function startRelay(listen: ListenAddress, socketPath: string, onDaemonGone: () => void = () => undefined): Promise<RelayServer> {
  // Keep-alive to the daemon: SDKs in many containers, one socket file.
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const forward = (request: IncomingMessage, response: ServerResponse) => {
    const refusal = relayRefusal(request, listen);
    if (refusal) {
      // A body that was announced is never read: the connection ends with the answer.
      const extra: Record<string, string> = {};
      if (refusal.code === 'BODY_NOT_ALLOWED') extra.connection = 'close';
      if (refusal.allow) extra.allow = refusal.allow;
      refuse(response, refusal.status, refusal.code, refusal.message, extra);
      return;
    }
    const headers: Record<string, string> = { host: listen.text, [RELAY_CLIENT_HEADER]: clientOf(request.socket) };
    const authorization = request.headers.authorization;
    if (authorization !== undefined) headers.authorization = authorization;
    const upstream = httpRequest({ socketPath, path: request.url, method: 'GET', headers, agent, timeout: REQUEST_TIMEOUT_MS }, (answer) => {
      const chunks: Buffer[] = [];
      let size = 0;
      answer.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) answer.destroy(new Error('response too large'));
        else chunks.push(chunk);
      });
      answer.on('end', () => {
        const body = Buffer.concat(chunks);
        const out: Record<string, string | number> = { 'cache-control': 'no-store', 'content-length': body.length };
        const type = answer.headers['content-type'];
        if (type !== undefined) out['content-type'] = type;
        if (answer.headers.allow !== undefined) out.allow = answer.headers.allow;
        response.writeHead(answer.statusCode ?? 502, out);
        response.end(body);
      });
      answer.on('error', () => unreachable(response));
    });
    upstream.on('timeout', () => upstream.destroy(new Error('timed out')));
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      unreachable(response);
      // Nobody listens on the socket file any more (or it is gone): the daemon stopped, or
      // restarted with a new socket that a bind mount of the old file never shows.
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') onDaemonGone();
    });
    upstream.end();
  };
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false, connectionsCheckingInterval: 1_000 }, forward);
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) =>
    refuse(response, 417, 'EXPECTATION_FAILED', 'only Expect: 100-continue is supported', { connection: 'close' }),
  );
  server.on('connect', (_request: IncomingMessage, socket: Duplex) => {
    const body = JSON.stringify({ Code: 'METHOD_NOT_ALLOWED', Message: 'CONNECT is not allowed' });
    socket.on('error', () => undefined);
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  server.on('clientError', (_error: Error, socket: Duplex) => {
    const body = JSON.stringify({ Code: 'BAD_REQUEST', Message: 'malformed request' });
    if (socket.writable) socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, listen)));
    server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => resolve());
  });
  return {
    server,
    address: listen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // An answer still being written (the 502 that saw the daemon gone) gets a moment to leave.
        setTimeout(() => server.closeAllConnections(), 500).unref();
        agent.destroy();
      }),
  };
}

function unreachable(response: ServerResponse): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  refuse(response, 502, 'DAEMON_UNAVAILABLE', 'the vault daemon did not answer on its relay socket');
}

function listenError(error: NodeJS.ErrnoException, listen: ListenAddress): VaultError {
  switch (error.code) {
    case 'EADDRINUSE':
      return new VaultError('USAGE', `${listen.text} is already in use`, { hint: 'stop what listens there, or give --listen another ADDRESS:PORT' });
    case 'EADDRNOTAVAIL':
      return new VaultError('USAGE', `${listen.host} is not an address of this machine or container`, {
        hint: 'give the relay container that address (compose: a network with subnet 169.254.170.0/24 and ipv4_address 169.254.170.2)',
      });
    case 'EACCES':
      return new VaultError('USAGE', `not allowed to listen on ${listen.text}`, {
        hint: 'ports below 1024 need root or net.ipv4.ip_unprivileged_port_start=0 (Docker sets it in containers)',
      });
    default:
      return new VaultError('INTERNAL', `the relay could not listen on ${listen.text} (${error.code ?? error.message})`);
  }
}
