import { tracingChannel } from 'node:diagnostics_channel';
import { Agent, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ManualClock, VaultError } from '@vault/core';
import { createHarness, imdsClient } from '@vault/stand-ins/server';
import { buildImdsServer } from '../buildServer.js';
import { ImdsTokens, imdsRoleName, instanceIdOf } from './imds.js';

const MIN = 60_000;

async function setup(options: Parameters<typeof createHarness>[0] = {}) {
  const h = createHarness(options);
  const { session, source } = await h.start({ kind: 'imds' });
  const imds = imdsClient(session, h.clock, h.audit);
  return { h, session, source, imds };
}

describe('IMDSv2 token route PUT /latest/api/token', () => {
  it('returns a token and echoes the TTL header', async () => {
    const { imds } = await setup();
    const res = await imds.app.inject({ method: 'PUT', url: '/latest/api/token', headers: { host: imds.host, 'x-aws-ec2-metadata-token-ttl-seconds': '300' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('300');
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body.length).toBeGreaterThan(20);
    expect(res.body).not.toMatch(/[\r\n]/);
  });

  it.each([
    ['missing', undefined],
    ['zero', '0'],
    ['above 21600', '21601'],
    ['negative', '-5'],
    ['not a number', 'abc'],
    ['fractional', '1.5'],
    ['empty', ''],
  ])('TTL %s → 400 JSON', async (_what, ttl) => {
    const { imds } = await setup();
    const headers: Record<string, string> = { host: imds.host };
    if (ttl !== undefined) headers['x-aws-ec2-metadata-token-ttl-seconds'] = ttl;
    const res = await imds.app.inject({ method: 'PUT', url: '/latest/api/token', headers });
    expect(res.statusCode).toBe(400);
    expect(res.json().Code).toBe('BAD_REQUEST');
  });

  it('accepts the bounds 1 and 21600', async () => {
    const { imds } = await setup();
    expect(await imds.token('1')).toBeTruthy();
    expect(await imds.token('21600')).toBeTruthy();
  });

  it('GET on the token route → 405; PUT elsewhere → 405', async () => {
    const { imds } = await setup();
    const get = await imds.app.inject({ method: 'GET', url: '/latest/api/token', headers: { host: imds.host, 'x-aws-ec2-metadata-token': await imds.token() } });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe('PUT');
    const put = await imds.app.inject({
      method: 'PUT',
      url: '/latest/meta-data/instance-id',
      headers: { host: imds.host, 'x-aws-ec2-metadata-token': await imds.token() },
    });
    expect(put.statusCode).toBe(405);
    expect(put.headers.allow).toBe('GET');
  });

  it('refuses token requests that came through a proxy (X-Forwarded-For)', async () => {
    const { imds } = await setup();
    const res = await imds.app.inject({
      method: 'PUT',
      url: '/latest/api/token',
      headers: { host: imds.host, 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '203.0.113.9' },
    });
    expect(res.statusCode).toBe(403);
  });
});

describe('IMDSv2 GET routes need a valid, unexpired token', () => {
  it('no token → 401 JSON', async () => {
    const { imds } = await setup();
    const res = await imds.app.inject({ method: 'GET', url: '/latest/meta-data/iam/security-credentials/', headers: { host: imds.host } });
    expect(res.statusCode).toBe(401);
    expect(res.json().Code).toBe('UNAUTHORIZED');
  });

  it('a forged or tampered token → 401', async () => {
    const { imds } = await setup();
    const good = await imds.token();
    const [payload, mac] = good.split('.') as [string, string];
    for (const bad of ['x', `${payload}.AAAA`, `${(parseInt(payload, 36) + 1000).toString(36)}.${mac}`, `.${mac}`, new ImdsTokens(new ManualClock()).issue(60)]) {
      const res = await imds.app.inject({ method: 'GET', url: '/latest/meta-data/instance-id', headers: { host: imds.host, 'x-aws-ec2-metadata-token': bad } });
      expect(res.statusCode).toBe(401);
    }
  });

  it('an expired token → 401', async () => {
    const { h, imds } = await setup();
    const token = await imds.token('60');
    const ok = await imds.app.inject({ method: 'GET', url: '/latest/meta-data/instance-id', headers: { host: imds.host, 'x-aws-ec2-metadata-token': token } });
    expect(ok.statusCode).toBe(200);
    h.clock.advance(60_000);
    const res = await imds.app.inject({ method: 'GET', url: '/latest/meta-data/instance-id', headers: { host: imds.host, 'x-aws-ec2-metadata-token': token } });
    expect(res.statusCode).toBe(401);
  });

  it("a token of another session's IMDS listener → 401", async () => {
    const { h, imds } = await setup();
    const { session: otherSession } = await h.start({ kind: 'imds' });
    const other = imdsClient(otherSession, h.clock, h.audit, 47_200);
    const res = await imds.app.inject({ method: 'GET', url: '/latest/meta-data/instance-id', headers: { host: imds.host, 'x-aws-ec2-metadata-token': await other.token() } });
    expect(res.statusCode).toBe(401);
  });

  it('guards: Host, loopback peer, Origin, body', async () => {
    const { imds } = await setup();
    const token = await imds.token();
    const base = { method: 'GET' as const, url: '/latest/meta-data/iam/security-credentials/account-a' };
    const host = await imds.app.inject({ ...base, headers: { host: '169.254.169.254', 'x-aws-ec2-metadata-token': token } });
    expect(host.statusCode).toBe(403);
    expect(host.json().Code).toBe('HOST_NOT_ALLOWED');
    const peer = await imds.app.inject({ ...base, remoteAddress: '172.17.0.2', headers: { host: imds.host, 'x-aws-ec2-metadata-token': token } });
    expect(peer.json().Code).toBe('PEER_NOT_ALLOWED');
    const origin = await imds.app.inject({ ...base, headers: { host: imds.host, origin: 'https://evil.example', 'x-aws-ec2-metadata-token': token } });
    expect(origin.json().Code).toBe('ORIGIN_NOT_ALLOWED');
    const body = await imds.app.inject({ ...base, payload: 'x', headers: { host: imds.host, 'x-aws-ec2-metadata-token': token } });
    expect(body.json().Code).toBe('BODY_NOT_ALLOWED');
    const put = await imds.app.inject({
      method: 'PUT',
      url: '/latest/api/token',
      headers: { host: 'evil.example', 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
    });
    expect(put.statusCode).toBe(403);
  });
});

describe('IMDS metadata routes', () => {
  it('lists exactly one role name with no trailing newline', async () => {
    const { imds } = await setup();
    for (const url of ['/latest/meta-data/iam/security-credentials/', '/latest/meta-data/iam/security-credentials']) {
      const res = await imds.get(url);
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('account-a');
    }
  });

  it('serves the IMDS credential JSON for that name', async () => {
    const { imds, session, h } = await setup();
    const res = await imds.get('/latest/meta-data/iam/security-credentials/account-a');
    expect(res.statusCode).toBe(200);
    const body = JSON.parse(res.body);
    expect(body).toEqual({
      Code: 'Success',
      LastUpdated: '2026-01-01T00:00:00Z',
      Type: 'AWS-HMAC',
      AccessKeyId: 'ASIAFAKE000000000001',
      SecretAccessKey: expect.any(String),
      Token: expect.any(String),
      Expiration: '2026-01-01T01:00:00Z',
    });
    expect(session.requestsServed).toBe(1);
    expect(h.log.records().filter((r) => r.audit === 'credentials-served' && r.route === 'imds')).toHaveLength(1);
  });

  it('another role name → 404 JSON', async () => {
    const { imds } = await setup();
    const res = await imds.get('/latest/meta-data/iam/security-credentials/other');
    expect(res.statusCode).toBe(404);
    expect(res.json().Code).toBe('NOT_FOUND');
  });

  it('instance-id, iam/info, placement and the identity document with the region', async () => {
    const { imds, session } = await setup();
    expect((await imds.get('/latest/meta-data/instance-id')).body).toBe(instanceIdOf(session.id));
    expect(instanceIdOf(session.id)).toMatch(/^i-[0-9a-f]{17}$/);
    const info = (await imds.get('/latest/meta-data/iam/info')).json();
    expect(info).toMatchObject({ Code: 'Success', InstanceProfileArn: 'arn:aws:iam::222222222222:instance-profile/account-a' });
    expect((await imds.get('/latest/meta-data/placement/region')).body).toBe('ap-northeast-1');
    expect((await imds.get('/latest/meta-data/placement/availability-zone')).body).toBe('ap-northeast-1a');
    const doc = (await imds.get('/latest/dynamic/instance-identity/document')).json();
    expect(doc).toMatchObject({ region: 'ap-northeast-1', accountId: '222222222222', instanceId: instanceIdOf(session.id), availabilityZone: 'ap-northeast-1a' });
  });

  it('nothing valid left → 503 JSON with what to run', async () => {
    const { imds, source, h, session } = await setup({ mfaDurationMs: 25 * MIN });
    // IMDS refreshes at 25 min (35 min left): the MFA session has just ended.
    await h.scheduler.advance(30 * MIN + 1);
    expect(source.fetchCalls).toBe(2);
    const res = await imds.get('/latest/meta-data/iam/security-credentials/account-a');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ Code: 'SESSION_NEEDS_MFA' });
    expect(res.json().Message).toContain(`vault session renew ${session.id}`);
  });

  it('an unsafe profile name is replaced in the role list', () => {
    expect(imdsRoleName('account-a')).toBe('account-a');
    expect(imdsRoleName('my profile/with spaces')).toBe('vault-credentials');
  });

  it('errors of the source are not shown beyond their code and message', async () => {
    const h = createHarness();
    const { session, source } = await h.start({ kind: 'imds', lazy: true });
    source.failNext(new VaultError('STS_ACCESS_DENIED', 'not authorized'));
    const imds = imdsClient(session, h.clock, h.audit);
    const res = await imds.get('/latest/meta-data/iam/security-credentials/account-a');
    expect(res.statusCode).toBe(503);
    expect(res.json().Code).toBe('STS_ACCESS_DENIED');
  });
});

describe('IMDS fast path (real listener): the same answers as the fastify route', () => {
  async function listen() {
    const h = createHarness();
    const { session } = await h.start({ kind: 'imds' });
    let port = 0;
    const app = buildImdsServer(session, { port: () => port, audit: h.audit, clock: h.clock });
    let fastifyRequests = 0;
    const count = () => {
      fastifyRequests++;
    };
    const channel = tracingChannel('fastify.request.handler');
    channel.start.subscribe(count);
    app.addHook('onClose', (_i, done) => {
      channel.start.unsubscribe(count);
      done();
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, path: string, headers: Record<string, string>) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        });
        req.on('error', reject);
        req.end();
      });
    const token = async (ttl = '21600') => (await send('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': ttl })).body;
    const path = `/latest/meta-data/iam/security-credentials/${imdsRoleName(session.profile)}`;
    return { h, session, app, send, token, path, agent, fastifyRequests: () => fastifyRequests };
  }

  it('serves the credential request without fastify: same body and content type; a token is checked once per connection until it expires', async () => {
    const t = await listen();
    try {
      const token = await t.token('60');
      const before = t.fastifyRequests(); // the token PUT went through fastify
      const fast = await t.send('GET', t.path, { 'x-aws-ec2-metadata-token': token });
      expect(fast.status).toBe(200);
      expect(await t.send('GET', t.path, { 'x-aws-ec2-metadata-token': token }).then((r) => r.status)).toBe(200);
      expect(t.fastifyRequests()).toBe(before);
      const routed = await imdsClient(t.session, t.h.clock, t.h.audit).get(t.path);
      expect(fast.body).toBe(routed.body);
      expect(fast.headers['content-type']).toBe(routed.headers['content-type']);
      expect(t.session.requestsServed).toBe(3);

      // The same connection, the same token, past its TTL: fastify answers 401.
      t.h.clock.advance(61_000);
      const expired = await t.send('GET', t.path, { 'x-aws-ec2-metadata-token': token });
      expect(expired.status).toBe(401);
      expect(JSON.parse(expired.body).Code).toBe('UNAUTHORIZED');
    } finally {
      t.agent.destroy();
      await t.app.close();
    }
  });

  it('hands everything else to fastify: no token, a forged or foreign token, wrong Host, Origin, another path', async () => {
    const t = await listen();
    const { session: otherSession } = await t.h.start({ kind: 'imds' });
    const other = imdsClient(otherSession, t.h.clock, t.h.audit); // another session's listener, another key
    try {
      const token = await t.token();
      const foreign = await other.token();
      const cases: Array<[string, string, Record<string, string>, number]> = [
        ['no token', t.path, {}, 401],
        ['forged token', t.path, { 'x-aws-ec2-metadata-token': `${token.split('.')[0]}.AAAA` }, 401],
        ["token of another session's listener", t.path, { 'x-aws-ec2-metadata-token': foreign }, 401],
        ['wrong Host', t.path, { 'x-aws-ec2-metadata-token': token, host: 'evil.example' }, 403],
        ['Origin', t.path, { 'x-aws-ec2-metadata-token': token, origin: 'https://evil.example' }, 403],
        ['another role name', '/latest/meta-data/iam/security-credentials/other-role', { 'x-aws-ec2-metadata-token': token }, 404],
      ];
      for (const [what, path, headers, status] of cases) {
        const res = await t.send('GET', path, headers);
        expect({ what, status: res.status }).toEqual({ what, status });
        expect(res.body).not.toContain('SecretAccessKey');
      }
      expect(t.session.requestsServed).toBe(0);
    } finally {
      t.agent.destroy();
      await t.app.close();
    }
  });
});
