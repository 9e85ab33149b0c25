import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createHarness } from '@vault/stand-ins/server';
import { RELAY_CLIENT_HEADER, RELAY_HELLO } from './relayProtocol.js';
import { buildRelaySocketServer, openRelaySocket, type RelaySocket } from './relaySocket.js';

function relayApp() {
  const h = createHarness();
  const app = buildRelaySocketServer({ sessions: h.registry, audit: h.audit });
  return { ...h, relay: app };
}

const opened: Array<{ socket: RelaySocket; dir: string }> = [];
afterEach(async () => {
  for (const { socket, dir } of opened.splice(0)) {
    await socket.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function onSocket(socketPath: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path, headers: { host: 'relay', ...headers }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the relay socket (what vault relay talks to)', () => {
  it('serves a session its credentials with the token; the audit line says ecs-relay and the container the relay names', async () => {
    const { relay, start, log } = relayApp();
    const { session } = await start();
    const res = await relay.inject({ method: 'GET', url: `/creds/${session.id}`, headers: { authorization: session.token, [RELAY_CLIENT_HEADER]: '169.254.170.3:40000' } });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ AccessKeyId: expect.any(String), Expiration: expect.any(String) });
    await new Promise((resolve) => setTimeout(resolve, 0));
    const served = log.records().filter((l) => l.audit === 'credentials-served');
    expect(served).toEqual([expect.objectContaining({ session: session.id, route: 'ecs-relay', client: { address: 'relay:169.254.170.3' } })]);
  });

  it('refuses a missing or wrong token, an unknown session, a browser, another method and a body, each with one JSON {Code, Message}', async () => {
    const { relay, start } = relayApp();
    const { session } = await start();
    const url = `/creds/${session.id}`;
    const cases: Array<[Parameters<typeof relay.inject>[0], number, string]> = [
      [{ method: 'GET', url }, 403, 'ACCESS_DENIED'],
      [{ method: 'GET', url, headers: { authorization: `${session.token}x` } }, 403, 'ACCESS_DENIED'],
      [{ method: 'GET', url: '/creds/0123456789ab', headers: { authorization: session.token } }, 403, 'ACCESS_DENIED'],
      [{ method: 'GET', url, headers: { authorization: session.token, origin: 'http://example.com' } }, 403, 'ORIGIN_NOT_ALLOWED'],
      [{ method: 'POST', url, headers: { authorization: session.token } }, 405, 'METHOD_NOT_ALLOWED'],
      [{ method: 'GET', url, headers: { authorization: session.token, 'content-type': 'text/plain' }, payload: 'x' }, 400, 'BODY_NOT_ALLOWED'],
    ];
    for (const [request, status, code] of cases) {
      const res = await relay.inject(request);
      expect({ request, status: res.statusCode }).toEqual({ request, status });
      expect(JSON.parse(res.body)).toEqual({ Code: code, Message: expect.any(String) });
    }
  });

  it('routes nothing of the control API, and says what it is at GET /relay', async () => {
    const { relay, start } = relayApp();
    const { session } = await start();
    for (const [method, url] of [
      ['GET', '/status'],
      ['GET', '/sessions'],
      ['POST', '/sessions'],
      ['GET', `/sessions/${session.id}/env`],
      ['DELETE', `/sessions/${session.id}`],
      ['POST', '/shutdown'],
    ] as const) {
      const res = await relay.inject({ method, url, headers: { authorization: session.token } });
      expect({ url, status: res.statusCode }).toEqual({ url, status: method === 'GET' ? 404 : 405 });
    }
    expect(JSON.parse((await relay.inject({ method: 'GET', url: '/relay' })).body)).toEqual(RELAY_HELLO);
  });

  it('listens on a 0600 socket, replaces a stale file, answers the hot request on the fast path like the route, and removes the file when closed', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const dir = mkdtempSync(join(tmpdir(), 'vrs-'));
    const path = join(dir, 'relay.sock');
    writeFileSync(path, ''); // left by a daemon that did not stop cleanly
    const socket = await openRelaySocket(path, { sessions: h.registry, audit: h.audit });
    opened.push({ socket, dir });
    expect([statSync(path).isSocket(), (statSync(path).mode & 0o777).toString(8)]).toEqual([true, '600']);
    const viaRoute = await socket.app.inject({ method: 'GET', url: `/creds/${session.id}`, headers: { authorization: session.token } });
    const viaFastPath = await onSocket(path, `/creds/${session.id}`, { authorization: session.token });
    expect([viaFastPath.status, viaFastPath.body]).toEqual([200, viaRoute.body]);
    expect((await onSocket(path, `/creds/${session.id}`, { authorization: 'wrong' })).status).toBe(403);
    await socket.close();
    opened.pop();
    expect(() => statSync(path)).toThrow();
    rmSync(dir, { recursive: true, force: true });
  });
});
