import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManualClock } from '@vault/core';
import type { CreatedSession } from '@vault/server';
import { startTestDaemon } from '../../packages/server/src/testing/daemonFixture.js';

/**
 * SECURITY.md, attackers 2 and 3 (a web page, a process with an SSRF bug, a local user without the
 * token) against a running daemon on real sockets: every hostile request is refused with a JSON
 * {Code, Message} and never answered with a credential, while a legitimate client keeps getting
 * credentials, and the daemon's memory stays flat over 10,000 of them.
 */

type Fixture = Awaited<ReturnType<typeof startTestDaemon>>;
interface Answer {
  status: number;
  body: string;
}

const HOSTILE_ROUNDS = 10_000;

/** A non-loopback address of this machine, if it has one (a peer the guards must refuse). */
function otherLocalAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
}

function send(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent | false; localAddress?: string } = {},
): Promise<Answer> {
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers ?? {}, agent: options.agent ?? false, localAddress: options.localAddress },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end(options.body);
  });
}

/** Raw bytes on a fresh connection (what node's client would not send); the whole reply. */
function raw(port: number, bytes: string): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.on('data', (c: Buffer) => (reply += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);
      resolve({ status, body: reply.slice(reply.indexOf('\r\n\r\n') + 4) });
    });
    socket.end(bytes);
  });
}

describe('hostile requests against a running daemon', () => {
  let f: Fixture;
  let a: CreatedSession;
  let b: CreatedSession;
  let imds: CreatedSession;
  let port: number;
  let imdsPort: number;
  /** Every secret the legitimate client was served (the leak scan looks for these). */
  const served = new Set<string>();

  beforeAll(async () => {
    f = await startTestDaemon();
    a = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    b = await f.client.createSession({ profile: 'account-b', kind: 'ecs' });
    imds = await f.client.createSession({ profile: 'account-a', kind: 'imds' });
    port = f.daemon.port;
    imdsPort = Number(new URL(imds.imdsEndpoint!).port);
  });
  afterAll(async () => {
    await f?.close();
  });

  const imdsToken = async (ttl = '21600') =>
    (await send(imdsPort, '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': ttl } })).body;

  /** Every kind of hostile request, each a function giving its answer. */
  function hostileCatalogue(expiredImdsToken: string): Array<[string, () => Promise<Answer>]> {
    const path = `/creds/${a.id}`;
    const tokenA = a.token;
    const imdsCreds = `/latest/meta-data/iam/security-credentials/account-a`;
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 });
    const cases: Array<[string, () => Promise<Answer>]> = [
      ['no token', () => send(port, path, { agent: keepAlive })],
      ['wrong token', () => send(port, path, { headers: { authorization: 'x'.repeat(tokenA.length) }, agent: keepAlive })],
      ['truncated token', () => send(port, path, { headers: { authorization: tokenA.slice(0, -1) }, agent: keepAlive })],
      ['padded token', () => send(port, path, { headers: { authorization: `${tokenA} ` + 'A' }, agent: keepAlive })],
      ['prefixed token', () => send(port, path, { headers: { authorization: `Bearer ${tokenA}` } })],
      ["another session's token", () => send(port, path, { headers: { authorization: b.token }, agent: keepAlive })],
      ['right token, unknown session', () => send(port, '/creds/0123456789ab', { headers: { authorization: tokenA } })],
      ['DNS rebinding Host', () => send(port, path, { headers: { authorization: tokenA, host: `attacker.example:${port}` }, agent: keepAlive })],
      ['Host without port', () => send(port, path, { headers: { authorization: tokenA, host: '127.0.0.1' } })],
      ['localhost Host', () => send(port, path, { headers: { authorization: tokenA, host: `localhost:${port}` } })],
      ['Origin (a web page)', () => send(port, path, { headers: { authorization: tokenA, origin: 'https://attacker.example' }, agent: keepAlive })],
      ['Origin null', () => send(port, path, { headers: { authorization: tokenA, origin: 'null' } })],
      ['POST', () => send(port, path, { method: 'POST', headers: { authorization: tokenA } })],
      ['DELETE', () => send(port, path, { method: 'DELETE', headers: { authorization: tokenA } })],
      ['OPTIONS preflight', () => send(port, path, { method: 'OPTIONS', headers: { origin: 'https://attacker.example', 'access-control-request-headers': 'authorization' } })],
      ['HEAD', () => send(port, path, { method: 'HEAD', headers: { authorization: tokenA } })],
      ['a body', () => send(port, path, { headers: { authorization: tokenA, 'content-type': 'text/plain', 'content-length': '5' }, body: 'hello' })],
      ['chunked body', () => raw(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${tokenA}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)],
      ['oversized headers', () => raw(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Pad: ${'a'.repeat(10_000)}\r\n\r\n`)],
      ['garbage request line', () => raw(port, 'HELLO / WORLD\r\n\r\n')],
      ['role-arn traversal', () => send(port, `${path}/role-arn/../../creds/${b.id}`, { headers: { authorization: tokenA } })],
      ['role-arn encoded traversal with the other token', () => send(port, `${path}/role-arn/arn:aws:iam::123456789012:role%2F..%2F..%2Fcreds%2F${b.id}`, { headers: { authorization: b.token } })],
      ['traversal from the other session', () => send(port, `/creds/${b.id}/../${a.id}`, { headers: { authorization: b.token } })],
      ['role-arn not an ARN', () => send(port, `${path}/role-arn/not-an-arn`, { headers: { authorization: tokenA } })],
      ['role-arn overlong', () => send(port, `${path}/role-arn/arn:aws:iam::123456789012:role/${'x'.repeat(3000)}`, { headers: { authorization: tokenA } })],
      ['role-arn with query', () => send(port, `${path}/role-arn/arn:aws:iam::123456789012:role/x?y=1`, { headers: { authorization: 'wrong' } })],
      ['double slash path', () => send(port, `//creds/${a.id}`, { headers: { authorization: 'wrong' } })],
      ['IMDS without a token', () => send(imdsPort, imdsCreds)],
      ['IMDS forged token', () => send(imdsPort, imdsCreds, { headers: { 'x-aws-ec2-metadata-token': '9zzzzzzz.AAAA' } })],
      ['IMDS expired token', () => send(imdsPort, imdsCreds, { headers: { 'x-aws-ec2-metadata-token': expiredImdsToken } })],
      ['IMDS token PUT without TTL', () => send(imdsPort, '/latest/api/token', { method: 'PUT' })],
      ['IMDS token PUT through a proxy', () => send(imdsPort, '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '203.0.113.9' } })],
      ['IMDS token via GET', () => send(imdsPort, '/latest/api/token', { headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })],
      ['IMDS DNS rebinding', () => send(imdsPort, '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60', host: 'attacker.example' } })],
    ];
    const other = otherLocalAddress();
    if (other) cases.push(['peer that is not loopback', () => send(port, path, { headers: { authorization: tokenA }, localAddress: other })]);
    return cases;
  }

  it('each kind of hostile request is refused with the right status and a JSON {Code, Message}; none gets a credential', async () => {
    const clock = f.clock as ManualClock;
    const shortLived = await imdsToken('1');
    clock.advance(2_000);
    const expected: Record<string, [number, string]> = {
      'no token': [403, 'ACCESS_DENIED'],
      'wrong token': [403, 'ACCESS_DENIED'],
      'truncated token': [403, 'ACCESS_DENIED'],
      'padded token': [403, 'ACCESS_DENIED'],
      'prefixed token': [403, 'ACCESS_DENIED'],
      "another session's token": [403, 'ACCESS_DENIED'],
      'right token, unknown session': [403, 'ACCESS_DENIED'],
      'DNS rebinding Host': [403, 'HOST_NOT_ALLOWED'],
      'Host without port': [403, 'HOST_NOT_ALLOWED'],
      'localhost Host': [403, 'HOST_NOT_ALLOWED'],
      'Origin (a web page)': [403, 'ORIGIN_NOT_ALLOWED'],
      'Origin null': [403, 'ORIGIN_NOT_ALLOWED'],
      POST: [405, 'METHOD_NOT_ALLOWED'],
      DELETE: [405, 'METHOD_NOT_ALLOWED'],
      'OPTIONS preflight': [403, 'ACCESS_DENIED'],
      'a body': [400, 'BODY_NOT_ALLOWED'],
      'chunked body': [400, 'BODY_NOT_ALLOWED'],
      'oversized headers': [431, 'HEADERS_TOO_LARGE'],
      'garbage request line': [400, 'BAD_REQUEST'],
      'role-arn traversal': [400, 'BAD_REQUEST'],
      'role-arn encoded traversal with the other token': [403, 'ACCESS_DENIED'],
      'traversal from the other session': [404, 'NOT_FOUND'],
      'role-arn not an ARN': [400, 'BAD_REQUEST'],
      'role-arn overlong': [400, 'BAD_REQUEST'],
      'role-arn with query': [403, 'ACCESS_DENIED'],
      'double slash path': [404, 'NOT_FOUND'],
      'IMDS without a token': [401, 'UNAUTHORIZED'],
      'IMDS forged token': [401, 'UNAUTHORIZED'],
      'IMDS expired token': [401, 'UNAUTHORIZED'],
      'IMDS token PUT without TTL': [400, 'BAD_REQUEST'],
      'IMDS token PUT through a proxy': [403, 'ACCESS_DENIED'],
      'IMDS token via GET': [405, 'METHOD_NOT_ALLOWED'],
      'IMDS DNS rebinding': [403, 'HOST_NOT_ALLOWED'],
      'peer that is not loopback': [403, 'PEER_NOT_ALLOWED'],
    };
    const seen: Record<string, unknown> = {};
    for (const [what, ask] of hostileCatalogue(shortLived)) {
      const answer = await ask();
      let code: string | undefined;
      if (what !== 'HEAD') {
        const json = JSON.parse(answer.body) as { Code?: string; Message?: string };
        expect(typeof json.Message, what).toBe('string');
        code = json.Code;
      }
      seen[what] = [answer.status, code];
      expect(answer.body, what).not.toMatch(/SecretAccessKey|AccessKeyId/);
    }
    const want = Object.fromEntries(Object.keys(seen).map((k) => [k, k === 'HEAD' ? [405, undefined] : expected[k]]));
    expect(seen).toEqual(want);
    console.log(`FIGURE hostileRequests kinds=${Object.keys(seen).length} nonLoopbackPeer=${otherLocalAddress() ? 'tested' : 'skipped (no other local address)'}`);
  });

  it(`${HOSTILE_ROUNDS} hostile requests in a row: the legitimate client is always served, no hostile one ever is, memory stays flat`, async () => {
    const clock = f.clock as ManualClock;
    const shortLived = await imdsToken('1');
    clock.advance(2_000);
    const catalogue = hostileCatalogue(shortLived);
    const legit = new Agent({ keepAlive: true, maxSockets: 1 });
    const legitAsk = () => send(port, `/creds/${a.id}`, { headers: { authorization: a.token }, agent: legit });
    // Warm up, then take the baseline.
    for (let i = 0; i < 200; i += 1) await catalogue[i % catalogue.length]![1]();
    const rssBefore = process.memoryUsage().rss;
    const byStatus: Record<number, number> = {};
    let legitServed = 0;
    let hostileCredentials = 0;
    const started = Date.now();
    for (let i = 0; i < HOSTILE_ROUNDS; i += 8) {
      const batch = await Promise.all(Array.from({ length: Math.min(8, HOSTILE_ROUNDS - i) }, (_, k) => catalogue[(i + k) % catalogue.length]![1]()));
      for (const answer of batch) {
        byStatus[answer.status] = (byStatus[answer.status] ?? 0) + 1;
        if (answer.status === 200 || /SecretAccessKey|AccessKeyId/.test(answer.body)) hostileCredentials++;
      }
      if (i % 200 === 0) {
        const ok = await legitAsk();
        expect(ok.status).toBe(200);
        const creds = JSON.parse(ok.body) as { AccessKeyId: string; SecretAccessKey: string; Token: string };
        expect(creds.AccessKeyId).toMatch(/^ASIA/);
        served.add(creds.SecretAccessKey).add(creds.Token);
        legitServed++;
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const rssAfter = process.memoryUsage().rss;
    legit.destroy();
    expect(hostileCredentials).toBe(0);
    expect(legitServed).toBe(HOSTILE_ROUNDS / 200);
    // The daemon runs in this process: the bound covers it, the clients and the test's own garbage.
    expect(rssAfter - rssBefore).toBeLessThan(64 * 1024 * 1024);
    console.log(
      `FIGURE hostileRequests sent=${HOSTILE_ROUNDS} credentialsToHostile=${hostileCredentials} legitServed=${legitServed}/${legitServed} ` +
        `byStatus=${JSON.stringify(byStatus)} rssBeforeMB=${(rssBefore / 2 ** 20).toFixed(1)} rssAfterMB=${(rssAfter / 2 ** 20).toFixed(1)} seconds=${seconds.toFixed(1)}`,
    );
    const log = f.log!.lines.join('\n');
    expect(served.size).toBeGreaterThan(0);
    for (const secret of [a.token, b.token, ...served]) expect(log).not.toContain(secret);
  });
});
