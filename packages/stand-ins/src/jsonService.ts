import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback } from './loopbackServer.js';

/** An AWS REST-JSON error: the SDK reads its name from `x-amzn-errortype`, its fields from the body. */
export class JsonServiceError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly body: Record<string, unknown>,
  ) {
    super(type);
  }
}

export interface JsonRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

/** A restJson1 service on 127.0.0.1 (the SSO OIDC and portal stand-ins): routes in, JSON out. */
export class JsonService {
  url = '';
  port = 0;
  private readonly server: Server;

  constructor(route: (request: JsonRequest) => unknown) {
    this.server = createServer((req, res) => {
      void this.handle(req, res, route);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, route: (request: JsonRequest) => unknown): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://stand-in');
    try {
      let body: Record<string, unknown> = {};
      if (text !== '') {
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          throw new JsonServiceError(400, 'InvalidRequestException', { error: 'invalid_request', error_description: 'body is not JSON' });
        }
      }
      const out = route({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body });
      send(res, 200, out === undefined ? {} : out);
    } catch (error) {
      if (error instanceof JsonServiceError) {
        send(res, error.status, error.body, { 'x-amzn-errortype': error.type });
      } else {
        send(res, 500, { message: `stand-in bug: ${String(error)}` }, { 'x-amzn-errortype': 'InternalServerException' });
      }
    }
  }

  async listen(port = 0): Promise<void> {
    this.port = await listenOnLoopback(this.server, port);
    this.url = `http://127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomBytes(16).toString('hex'),
    ...headers,
  });
  res.end(text);
}

/** A random opaque value of the given prefix, like the service's tokens and codes. */
export function opaque(prefix: string, bytes = 32): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}
