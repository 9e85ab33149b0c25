import { Agent, request, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';

/**
 * HTTP helpers for the endpoint-abuse suite: node:http for well-formed requests (keep-alive or a
 * fresh connection each, optionally from another local address) and raw sockets for what no
 * well-behaved client sends (no Host on HTTP/1.1, CONNECT, NUL bytes, garbage).
 */

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The connection ended without any response. */
  noResponse?: boolean;
}

export interface HttpSpec {
  port: number;
  path: string;
  method?: string;
  /** Sent as given; `host` defaults to 127.0.0.1:PORT unless set to null (then none is sent). */
  headers?: Record<string, string | string[] | null>;
  body?: string | Buffer;
  /** A keep-alive agent, or undefined for a fresh connection that closes after the exchange. */
  agent?: Agent;
  localAddress?: string;
}

export function httpRequest(spec: HttpSpec): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: OutgoingHttpHeaders = {};
    let setHost = true;
    for (const [name, value] of Object.entries(spec.headers ?? {})) {
      if (value === null) {
        if (name.toLowerCase() === 'host') setHost = false;
        continue;
      }
      headers[name] = value;
    }
    if (setHost && headers.host === undefined && headers.Host === undefined) headers.host = `127.0.0.1:${spec.port}`;
    const req = request(
      {
        host: '127.0.0.1',
        port: spec.port,
        path: spec.path,
        method: spec.method ?? 'GET',
        headers,
        setHost: false,
        agent: spec.agent ?? false,
        ...(spec.localAddress ? { localAddress: spec.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      // The server may answer and close before the whole body was written (an early 400/431).
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') resolve({ status: 0, headers: {}, body: '', noResponse: true });
      else reject(error);
    });
    if (spec.body !== undefined) req.end(spec.body);
    else req.end();
  });
}

/** Writes `text` on a fresh connection and parses the first response (until close or `waitMs`). */
export function rawExchange(port: number, text: string | Buffer, options: { waitMs?: number; localAddress?: string } = {}): Promise<Reply> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) }, () => socket.write(text));
    const chunks: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponse(Buffer.concat(chunks)));
    };
    const timer = setTimeout(finish, options.waitMs ?? 2_000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (complete(Buffer.concat(chunks))) finish();
    });
    socket.on('close', finish);
    socket.on('error', finish);
  });
}

/** Whether a buffered response is complete (headers plus Content-Length bytes, or the last chunk). */
function complete(buffer: Buffer): boolean {
  const text = buffer.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const head = text.slice(0, end);
  if (/^HTTP\/1\.1 1\d\d /.test(head)) return complete(buffer.subarray(end + 4));
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length) return buffer.length - (end + 4) >= Number(length[1]);
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) return text.endsWith('0\r\n\r\n');
  return false;
}

export function parseResponse(buffer: Buffer): Reply {
  let text = buffer.toString('utf8');
  // Skip interim 1xx responses (100 Continue).
  while (/^HTTP\/1\.1 1\d\d /.test(text) && text.includes('\r\n\r\n')) text = text.slice(text.indexOf('\r\n\r\n') + 4);
  const end = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/') || end < 0) return { status: 0, headers: {}, body: text, noResponse: true };
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = text.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    let decoded = '';
    let rest = body;
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) break;
      const size = parseInt(rest.slice(0, nl), 16);
      if (!(size > 0)) break;
      decoded += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = decoded;
  } else if (headers['content-length'] !== undefined) {
    body = Buffer.from(body, 'utf8').subarray(0, Number(headers['content-length'])).toString('utf8');
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body };
}

/** An IPv4 address of this machine that is not loopback (the peer for the non-loopback case). */
export function nonLoopbackAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) {
      if (entry.family === 'IPv4' && !entry.internal && !entry.address.startsWith('127.')) return entry.address;
    }
  }
  return undefined;
}

/** A deterministic PRNG (mulberry32) for reproducible request mixes. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
