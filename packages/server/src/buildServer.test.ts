import { tracingChannel } from 'node:diagnostics_channel';
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { VaultError } from '@vault/core';
import { settle } from './sessions/scheduler.js';
import { createHarness, TEST_HOST } from '@vault/stand-ins/server';

const MIN = 60_000;
const HOUR = 60 * MIN;

describe('container route GET /creds/<id>', () => {
  it('serves the session credentials as ECS JSON', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const res = await h.getCreds(session);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['AccessKeyId', 'AccountId', 'Expiration', 'SecretAccessKey', 'Token']);
    expect(body).toMatchObject({ AccessKeyId: 'ASIAFAKE000000000001', AccountId: '222222222222', Expiration: '2026-01-01T01:00:00Z' });
    expect(session.requestsServed).toBe(1);
  });

  it('counts requests and makes no upstream call while the cache is fresh', async () => {
    const h = createHarness();
    const { session, source } = await h.start();
    for (let i = 0; i < 20; i++) expect((await h.getCreds(session)).statusCode).toBe(200);
    expect(source.fetchCalls).toBe(1);
    expect(session.requestsServed).toBe(20);
  });

  it('a lazy session makes no upstream call until the first request', async () => {
    const h = createHarness();
    const { session, source } = await h.start({ lazy: true });
    expect(source.fetchCalls).toBe(0);
    expect((await h.getCreds(session)).statusCode).toBe(200);
    expect(source.fetchCalls).toBe(1);
  });

  it('a non-lazy session fetches at creation, and creation fails with the source error', async () => {
    const h = createHarness();
    h.factory.createError = new VaultError('MFA_REQUIRED', 'account-a needs an MFA code');
    await expect(h.start()).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
    expect(h.registry.size).toBe(0);
  });

  it('a non-lazy session whose first fetch fails is not created', async () => {
    const h = createHarness();
    const orig = h.factory.create.bind(h.factory);
    h.factory.create = async (req) => {
      const s = await orig(req);
      s.failNext(new VaultError('STS_ACCESS_DENIED', 'not authorized to perform sts:AssumeRole'));
      return s;
    };
    await expect(h.start()).rejects.toMatchObject({ code: 'STS_ACCESS_DENIED' });
    expect(h.registry.size).toBe(0);
  });

  it('single flight: 200 concurrent requests on a fresh lazy session make exactly 1 upstream call', async () => {
    const h = createHarness();
    const { session, source } = await h.start({ lazy: true });
    source.hold();
    const pending = Array.from({ length: 200 }, () => h.getCreds(session));
    await settle();
    source.release();
    const responses = await Promise.all(pending);
    expect(source.fetchCalls).toBe(1);
    expect(responses.every((r) => r.statusCode === 200)).toBe(true);
    expect(new Set(responses.map((r) => r.json().AccessKeyId)).size).toBe(1);
    expect(session.requestsServed).toBe(200);
  });

  it('STS failure while valid: keeps serving, backs off and counts the failures', async () => {
    const h = createHarness();
    const { session, source } = await h.start();
    source.failNext(new VaultError('STS_THROTTLED', 'Rate exceeded'), new VaultError('STS_THROTTLED', 'Rate exceeded'));
    await h.scheduler.advance(40 * MIN);
    const res = await h.getCreds(session);
    expect(res.statusCode).toBe(200);
    expect(res.json().AccessKeyId).toBe('ASIAFAKE000000000001');
    expect(session.credentials.failures).toBe(1);
    expect(session.state).toBe('active');
    await h.scheduler.advance(3_750);
    expect(session.credentials.failures).toBe(2);
    await h.scheduler.advance(7_500);
    expect(source.fetchCalls).toBe(4);
    expect((await h.getCreds(session)).json().AccessKeyId).toBe('ASIAFAKE000000000002');
    const warn = h.log.records().filter((r) => r.event === 'refresh-failed');
    expect(warn).toHaveLength(2);
    expect(warn[0]).toMatchObject({ code: 'STS_THROTTLED', action: 'retry', stillServing: true });
  });

  it('nothing valid left: 503 JSON with a Message saying what happened and what to run', async () => {
    const h = createHarness();
    const { session, source } = await h.start();
    for (let i = 0; i < 50; i++) source.failNext(new VaultError('STS_UNAVAILABLE', 'could not reach STS'));
    await h.scheduler.advance(45 * MIN + 1);
    const res = await h.getCreds(session);
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json();
    expect(body.Code).toBe('STS_UNAVAILABLE');
    expect(body.Message).toContain(`session ${session.id}`);
    expect(body.Message).toContain('could not reach STS');
    expect(body.Message).toContain(`vault session renew ${session.id}`);
    expect(session.state).toBe('failed');
  });

  it('needs-mfa → renew → the same id and token work again', async () => {
    const h = createHarness({ mfaDurationMs: 2 * HOUR });
    const { session, source } = await h.start();
    // Refreshes at 40 and 80 min succeed; the one at 120 min meets the expired MFA session.
    await h.scheduler.advance(2 * HOUR);
    expect(session.state).toBe('needs-mfa');
    // Still valid above the minimum: served.
    expect((await h.getCreds(session)).statusCode).toBe(200);
    await h.scheduler.advance(5 * MIN + 1);
    const res = await h.getCreds(session);
    expect(res.statusCode).toBe(503);
    expect(res.json().Code).toBe('SESSION_NEEDS_MFA');
    expect(res.json().Message).toContain(`vault session renew ${session.id}`);
    const fetchesBefore = source.fetchCalls;
    await h.scheduler.advance(HOUR);
    expect(source.fetchCalls).toBe(fetchesBefore); // halted: no retries without a new code

    const renewed = await h.registry.renew(session.id, '123456');
    expect(renewed).toBe(session);
    expect(session.state).toBe('active');
    const again = await h.getCreds(session);
    expect(again.statusCode).toBe(200);
    expect(source.renewCodes).toEqual(['123456']);
    expect(h.log.records().some((r) => r.audit === 'session-renew' && r.ok === true)).toBe(true);
  });

  it('a renew with a wrong code fails and leaves the session needing MFA', async () => {
    const h = createHarness({ mfaDurationMs: HOUR });
    const { session } = await h.start();
    await h.scheduler.advance(80 * MIN);
    expect(session.state).toBe('needs-mfa');
    await expect(h.registry.renew(session.id, 'nope')).rejects.toMatchObject({ code: 'MFA_INVALID' });
    expect(session.state).toBe('needs-mfa');
  });

  it('a stopped session is gone: 403 like any unknown id', async () => {
    const h = createHarness();
    const { session } = await h.start();
    await h.registry.stop(session.id);
    const res = await h.getCreds(session);
    expect(res.statusCode).toBe(403);
    expect(h.log.records().some((r) => r.audit === 'session-stop' && r.session === session.id)).toBe(true);
  });

  it('sessions are independent: each its own profile, token and credentials', async () => {
    const h = createHarness();
    const a = await h.start({ profile: 'account-a' });
    const b = await h.start({ profile: 'account-b' });
    expect(a.session.token).not.toBe(b.session.token);
    const wrong = await h.getCreds(a.session, { headers: { authorization: b.session.token } });
    expect(wrong.statusCode).toBe(403);
    expect((await h.getCreds(a.session)).json().SecretAccessKey).not.toBe((await h.getCreds(b.session)).json().SecretAccessKey);
  });
});

describe('container route GET /creds/<id>/role-arn/<ARN>', () => {
  const arn = 'arn:aws:iam::333333333333:role/account-b-role';

  it('assumes the role from the session and caches it per ARN', async () => {
    const h = createHarness();
    const { session, source } = await h.start();
    const res = await h.getCreds(session, { path: `/creds/${session.id}/role-arn/${arn}` });
    expect(res.statusCode).toBe(200);
    expect(res.json().AccountId).toBe('333333333333');
    await h.getCreds(session, { path: `/creds/${session.id}/role-arn/${arn}` });
    expect(source.assumeCalls.get(arn)).toBe(1);
    const other = 'arn:aws:iam::444444444444:role/path/to/other';
    expect((await h.getCreds(session, { path: `/creds/${session.id}/role-arn/${other}` })).statusCode).toBe(200);
    expect(source.assumeCalls.get(other)).toBe(1);
    expect(h.log.records().filter((r) => r.route === 'ecs-role')).toHaveLength(3);
  });

  it('applies the same refresh rules: refresh from 20 min left, never serve under 15 min', async () => {
    const h = createHarness();
    const { session, source } = await h.start();
    const path = `/creds/${session.id}/role-arn/${arn}`;
    await h.getCreds(session, { path });
    h.clock.advance(40 * MIN);
    await h.getCreds(session, { path }); // in the refresh window: background refresh
    await settle();
    expect(source.assumeCalls.get(arn)).toBe(2);
    h.clock.advance(50 * MIN); // the second set has 10 min left
    const res = await h.getCreds(session, { path });
    const left = Date.parse(res.json().Expiration) - h.clock.now();
    expect(left).toBeGreaterThanOrEqual(15 * MIN);
  });

  it('percent-encoded ARNs are decoded before the check', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const res = await h.getCreds(session, { path: `/creds/${session.id}/role-arn/${encodeURIComponent(arn)}` });
    expect(res.statusCode).toBe(200);
  });

  it.each([
    ['not an ARN', 'hello'],
    ['a user, not a role', 'arn:aws:iam::333333333333:user/bob'],
    ['an 11-digit account', 'arn:aws:iam::33333333333:role/x'],
    ['another service', 'arn:aws:s3:::bucket/role/x'],
    ['an unknown partition', 'arn:aws-moon:iam::333333333333:role/x'],
    ['characters outside the IAM set', 'arn:aws:iam::333333333333:role/x;rm'],
    ['an empty name', 'arn:aws:iam::333333333333:role/'],
    ['a name over 64 characters', `arn:aws:iam::333333333333:role/${'a'.repeat(65)}`],
  ])('rejects %s with 400 and no STS call', async (_what, bad) => {
    const h = createHarness();
    const { session, source } = await h.start();
    const res = await h.getCreds(session, { path: `/creds/${session.id}/role-arn/${encodeURIComponent(bad)}` });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ Code: 'BAD_REQUEST' });
    expect(source.assumeCalls.size).toBe(0);
  });

  it('checks the token before anything else', async () => {
    const h = createHarness();
    const { session, source } = await h.start();
    const res = await h.getCreds(session, { path: `/creds/${session.id}/role-arn/${arn}`, headers: { authorization: 'wrong' } });
    expect(res.statusCode).toBe(403);
    expect(source.assumeCalls.size).toBe(0);
  });
});

describe('guards on the container route', () => {
  it('missing token → 403 JSON', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const res = await h.getCreds(session, { headers: { authorization: undefined } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ Code: 'ACCESS_DENIED', Message: 'missing or invalid authorization token' });
  });

  it('wrong token, a token of the wrong length, a prefix of the token and "Bearer <token>" → 403', async () => {
    const h = createHarness();
    const { session } = await h.start();
    for (const bad of ['x', session.token.slice(0, -1), `${session.token}x`, `Bearer ${session.token}`, session.token.toUpperCase()]) {
      const res = await h.getCreds(session, { headers: { authorization: bad } });
      expect(res.statusCode).toBe(403);
    }
  });

  it('unknown session id → the same 403 as a wrong token', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const res = await h.getCreds(session, { path: '/creds/0123456789ab' });
    expect(res.statusCode).toBe(403);
    expect(res.json().Code).toBe('ACCESS_DENIED');
  });

  it('token check comes first: a wrong token with a bad Host, an Origin and a POST is still 403 ACCESS_DENIED', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const res = await h.getCreds(session, {
      method: 'POST',
      headers: { authorization: 'wrong', host: 'evil.example:80', origin: 'https://evil.example' },
      remoteAddress: '10.0.0.8',
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().Code).toBe('ACCESS_DENIED');
  });

  it('non-loopback peer → 403', async () => {
    const h = createHarness();
    const { session } = await h.start();
    for (const remoteAddress of ['10.1.2.3', '192.168.0.10', '::ffff:10.0.0.1', 'fe80::1']) {
      const res = await h.getCreds(session, { remoteAddress });
      expect(res.statusCode).toBe(403);
      expect(res.json().Code).toBe('PEER_NOT_ALLOWED');
    }
    for (const remoteAddress of ['127.0.0.1', '127.0.0.53', '::1', '::ffff:127.0.0.1']) {
      expect((await h.getCreds(session, { remoteAddress })).statusCode).toBe(200);
    }
  });

  it('Host other than 127.0.0.1:PORT → 403 (DNS rebinding)', async () => {
    const h = createHarness();
    const { session } = await h.start();
    for (const host of ['localhost:47123', 'evil.example:47123', '127.0.0.1', '127.0.0.1:80', '[::1]:47123', `${TEST_HOST}.evil.example`]) {
      const res = await h.getCreds(session, { headers: { host } });
      expect(res.statusCode).toBe(403);
      expect(res.json().Code).toBe('HOST_NOT_ALLOWED');
    }
  });

  it('any Origin header (browsers) → 403', async () => {
    const h = createHarness();
    const { session } = await h.start();
    for (const headers of [{ origin: 'null' }, { origin: 'http://127.0.0.1:47123' }, { origin: 'https://evil.example' }]) {
      const res = await h.getCreds(session, { headers });
      expect(res.statusCode).toBe(403);
      expect(res.json().Code).toBe('ORIGIN_NOT_ALLOWED');
    }
  });

  it('methods other than GET → 405 with Allow: GET', async () => {
    const h = createHarness();
    const { session } = await h.start();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
      const res = await h.getCreds(session, { method });
      expect(res.statusCode).toBe(405);
      expect(res.headers.allow).toBe('GET');
      if (method !== 'HEAD') expect(res.json().Code).toBe('METHOD_NOT_ALLOWED');
    }
    expect(session.requestsServed).toBe(0);
  });

  it('a request body → 400', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const res = await h.getCreds(session, { payload: '{"a":1}', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().Code).toBe('BODY_NOT_ALLOWED');
    const chunked = await h.getCreds(session, { headers: { 'transfer-encoding': 'chunked' } });
    expect(chunked.statusCode).toBe(400);
  });

  it('no CORS headers, ever (preflight included)', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const responses = [
      await h.getCreds(session),
      await h.getCreds(session, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } }),
      await h.getCreds(session, { headers: { authorization: 'bad' } }),
      await h.app.inject({ method: 'OPTIONS', url: '/anything', headers: { host: TEST_HOST, origin: 'https://evil.example' } }),
    ];
    for (const res of responses) {
      expect(Object.keys(res.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
    }
  });

  it('unknown paths → 404 JSON; unknown methods → 405 JSON', async () => {
    const h = createHarness();
    const nf = await h.app.inject({ method: 'GET', url: '/latest/meta-data/', headers: { host: TEST_HOST } });
    expect(nf.statusCode).toBe(404);
    expect(nf.json()).toEqual({ Code: 'NOT_FOUND', Message: 'no such route' });
    const post = await h.app.inject({ method: 'POST', url: '/nothing', headers: { host: TEST_HOST } });
    expect(post.statusCode).toBe(405);
    expect(post.json().Code).toBe('METHOD_NOT_ALLOWED');
  });

  it('an unexpected failure is a 500 JSON without details', async () => {
    const h = createHarness();
    const { session, source } = await h.start({ lazy: true });
    source.failNext(new TypeError('boom: secret-looking detail'));
    const res = await h.getCreds(session);
    expect(res.statusCode).toBe(503);
    expect(res.json().Code).toBe('INTERNAL');
    expect(res.body).not.toContain('boom');
  });
});

describe('audit and redaction', () => {
  it('writes an audit line per credential served with session, route and client address and port', async () => {
    const h = createHarness();
    const { session } = await h.start();
    await h.getCreds(session);
    const served = h.log.records().filter((r) => r.audit === 'credentials-served');
    expect(served).toHaveLength(1);
    expect(served[0]).toMatchObject({ session: session.id, profile: 'account-a', route: 'ecs', client: { address: '127.0.0.1' } });
    expect(h.log.records().some((r) => r.audit === 'session-start' && r.session === session.id)).toBe(true);
  });

  it('never logs the token or the secret values', async () => {
    const h = createHarness();
    const { session, source } = await h.start();
    const res = await h.getCreds(session);
    source.failNext(new VaultError('STS_THROTTLED', 'Rate exceeded'));
    await h.scheduler.advance(41 * MIN);
    await h.getCreds(session, { headers: { authorization: 'wrong' } });
    // A careless log call with credentials and headers in it is censored by pino.
    h.log.logger.info({ req: { headers: { authorization: session.token } }, credentials: res.json(), secretAccessKey: res.json().SecretAccessKey }, 'oops');
    const all = h.log.lines.join('\n');
    expect(all).not.toContain(session.token);
    expect(all).not.toContain(res.json().SecretAccessKey);
    expect(all).not.toContain(res.json().Token);
    expect(all).toContain('[REDACTED]');
  });
});

describe('fast path (real listener): the same answers as the fastify routes', () => {
  async function listen(h: ReturnType<typeof createHarness>, fastPath = true) {
    let port = 0;
    const { buildServer } = await import('./buildServer.js');
    const app = buildServer({ sessions: h.registry, port: () => port, audit: h.audit, fastPath });
    // Fastify traces every route handler it runs; the fast path runs none.
    let fastifyRequests = 0;
    const count = () => {
      fastifyRequests++;
    };
    const channel = tracingChannel('fastify.request.handler');
    channel.start.subscribe(count);
    app.addHook('onClose', (_instance, done) => {
      channel.start.unsubscribe(count);
      done();
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as import('node:net').AddressInfo).port;
    return { app, port, fastifyRequests: () => fastifyRequests };
  }

  function send(port: number, path: string, headers: Record<string, string>, method = 'GET', body?: string) {
    return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('serves the hot request without fastify, with the same bytes and headers as the route', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const { app, port, fastifyRequests } = await listen(h);
    try {
      const fast = await send(port, `/creds/${session.id}`, { authorization: session.token });
      expect(fast.status).toBe(200);
      expect(fastifyRequests()).toBe(0);
      const routed = await h.getCreds(session);
      expect(fast.body).toBe(routed.body);
      expect(fast.headers['content-type']).toBe(routed.headers['content-type']);
      expect(fast.headers['cache-control']).toBe(routed.headers['cache-control']);
      expect(Object.keys(fast.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
      expect(session.requestsServed).toBe(2);
      expect(h.log.records().filter((r) => r.audit === 'credentials-served')).toHaveLength(2);
    } finally {
      await app.close();
    }
  });

  it('hands every request it would not serve to fastify, which rejects it as the routes do', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const { app, port, fastifyRequests } = await listen(h);
    const path = `/creds/${session.id}`;
    try {
      const cases: Array<[string, () => Promise<{ status: number; body: string }>, number, string]> = [
        ['no token', () => send(port, path, {}), 403, 'ACCESS_DENIED'],
        ['wrong token', () => send(port, path, { authorization: 'x'.repeat(43) }), 403, 'ACCESS_DENIED'],
        ['wrong Host', () => send(port, path, { authorization: session.token, host: `evil.example:${port}` }), 403, 'HOST_NOT_ALLOWED'],
        ['Origin', () => send(port, path, { authorization: session.token, origin: 'https://evil.example' }), 403, 'ORIGIN_NOT_ALLOWED'],
        ['POST', () => send(port, path, { authorization: session.token }, 'POST'), 405, 'METHOD_NOT_ALLOWED'],
        ['a body', () => send(port, path, { authorization: session.token, 'content-type': 'text/plain', 'content-length': '5' }, 'GET', 'hello'), 400, 'BODY_NOT_ALLOWED'],
        ['unknown id', () => send(port, '/creds/0123456789ab', { authorization: session.token }), 403, 'ACCESS_DENIED'],
      ];
      for (const [what, request, status, code] of cases) {
        const res = await request().catch((error: Error) => ({ status: -1, body: JSON.stringify({ Code: `${what}: ${error.message}` }) }));
        expect({ what, status: res.status, code: JSON.parse(res.body).Code }).toEqual({ what, status, code });
      }
      // Only fastify answers anything but 200; none of these reached a credential.
      expect(session.requestsServed).toBe(0);
      expect(fastifyRequests()).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('leaves a cold cache to the fastify route (lazy session, first request)', async () => {
    const h = createHarness();
    const { session, source } = await h.start({ lazy: true });
    const { app, port, fastifyRequests } = await listen(h);
    try {
      expect((await send(port, `/creds/${session.id}`, { authorization: session.token })).status).toBe(200);
      expect(fastifyRequests()).toBe(1);
      expect((await send(port, `/creds/${session.id}`, { authorization: session.token })).status).toBe(200);
      expect(fastifyRequests()).toBe(1);
      expect(source.fetchCalls).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('can be switched off: then fastify answers everything', async () => {
    const h = createHarness();
    const { session } = await h.start();
    const { app, port, fastifyRequests } = await listen(h, false);
    try {
      expect((await send(port, `/creds/${session.id}`, { authorization: session.token })).status).toBe(200);
      expect(fastifyRequests()).toBe(1);
    } finally {
      await app.close();
    }
  });
});
