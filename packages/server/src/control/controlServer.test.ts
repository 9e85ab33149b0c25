import { statSync } from 'node:fs';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { VaultError, type ManualClock } from '@vault/core';
import type { ManualScheduler } from '../sessions/scheduler.js';
import { startTestDaemon } from '@vault/stand-ins/server';

const MIN = 60_000;
const HOUR = 60 * MIN;

type Fixture = Awaited<ReturnType<typeof startTestDaemon>>;
let fixture: Fixture | undefined;

afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

async function start(options: Parameters<typeof startTestDaemon>[0] = {}): Promise<Fixture> {
  fixture = await startTestDaemon(options);
  return fixture;
}

/** A raw request on the socket, to see status codes and bodies as they are. */
function raw(socketPath: string, method: string, path: string, body?: string): Promise<{ status: number; json: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('control API over the Unix socket', () => {
  it('the socket is 0600 inside a 0700 directory', async () => {
    const f = await start();
    expect(statSync(f.daemon.paths.socket).isSocket()).toBe(true);
    expect(statSync(f.daemon.paths.socket).mode & 0o777).toBe(0o600);
    expect(statSync(f.stateDir).mode & 0o777).toBe(0o700);
  });

  it('GET /status: pid, port, uptime, sessions, version', async () => {
    const f = await start();
    (f.clock as ManualClock).advance(90_000);
    const status = await f.client.status();
    expect(status).toMatchObject({ pid: process.pid, port: f.daemon.port, uptimeSeconds: 90, sessions: 0, version: '0.1.0' });
    expect(await f.client.isRunning()).toBe(true);
  });

  it('POST /sessions (ecs): id, token, uri with a path, region, expiration and the variables', async () => {
    const f = await start();
    const created = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    expect(created.id).toMatch(/^[0-9a-f]{12}$/);
    expect(created.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.uri).toBe(`http://127.0.0.1:${f.daemon.port}/creds/${created.id}`);
    expect(created.region).toBe('ap-northeast-1');
    expect(created.state).toBe('active');
    expect(created.credentialSecondsLeft).toBe(3600);
    expect(created.mfaSecondsLeft).toBe(8 * 3600);
    expect(created.env).toEqual({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: created.uri,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: created.token,
      AWS_REGION: 'ap-northeast-1',
      AWS_DEFAULT_REGION: 'ap-northeast-1',
      AWS_VAULT: 'account-a',
    });
    expect(f.factory.last.fetchCalls).toBe(1);
  });

  it('POST /sessions passes the source request through (mfaToken, duration, region) and honours lazy', async () => {
    const f = await start();
    const created = await f.client.createSession({ profile: 'account-b', kind: 'ecs', mfaToken: '123456', durationSeconds: 7200, region: 'eu-west-1', lazy: true });
    expect(f.factory.requests.at(-1)).toEqual({ profile: 'account-b', mfaToken: '123456', durationSeconds: 7200, region: 'eu-west-1' });
    expect(f.factory.last.fetchCalls).toBe(0);
    expect(created.lazy).toBe(true);
    expect(created.credentialExpiration).toBeUndefined();
    expect(created.region).toBe('eu-west-1');
  });

  it('POST /sessions (imds): its own listener, and the endpoint variables', async () => {
    const f = await start();
    const created = await f.client.createSession({ profile: 'account-a', kind: 'imds' });
    expect(created.imdsEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(created.imdsEndpoint).not.toBe(`http://127.0.0.1:${f.daemon.port}/`);
    expect(created.env).toMatchObject({
      AWS_EC2_METADATA_SERVICE_ENDPOINT: created.imdsEndpoint,
      NO_PROXY: '127.0.0.1',
      AWS_VAULT: 'account-a',
    });
    expect(created.env.AWS_CONTAINER_CREDENTIALS_FULL_URI).toBeUndefined();
  });

  it('POST /sessions errors: the source error code, and 400 USAGE for a bad body', async () => {
    const f = await start();
    await expect(f.client.createSession({ profile: 'missing', kind: 'ecs' })).rejects.toMatchObject({ code: 'PROFILE_NOT_FOUND' });
    const bad = await raw(f.daemon.paths.socket, 'POST', '/sessions', JSON.stringify({ profile: 'a', kind: 'tcp' }));
    expect(bad.status).toBe(400);
    expect(bad.json.Code).toBe('USAGE');
    const short = await raw(f.daemon.paths.socket, 'POST', '/sessions', JSON.stringify({ profile: 'a', kind: 'ecs', durationSeconds: 60 }));
    expect(short.status).toBe(400);
    f.factory.createError = new VaultError('MFA_REQUIRED', 'account-a needs an MFA code', { hint: 'pass --mfa-token' });
    const mfa = await raw(f.daemon.paths.socket, 'POST', '/sessions', JSON.stringify({ profile: 'account-a', kind: 'ecs' }));
    expect(mfa.status).toBe(409);
    expect(mfa.json).toEqual({ Code: 'MFA_REQUIRED', Message: 'account-a needs an MFA code', Hint: 'pass --mfa-token' });
  });

  it('GET /sessions lists sessions with time left and requests served, never tokens or secrets', async () => {
    const f = await start();
    const a = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    await f.client.createSession({ profile: 'account-b', kind: 'imds' });
    await f.client.credentialsForProfile('account-a');
    (f.clock as ManualClock).advance(10 * MIN);
    const res = await raw(f.daemon.paths.socket, 'GET', '/sessions');
    const text = JSON.stringify(res.json);
    expect(text).not.toContain(a.token);
    expect(text).not.toMatch(/fake-secret|fake-session-token/);
    const list = await f.client.listSessions();
    expect(list).toHaveLength(2);
    const row = list.find((s) => s.id === a.id)!;
    expect(row).toMatchObject({ profile: 'account-a', kind: 'ecs', state: 'active', uri: a.uri, requestsServed: 1, credentialSecondsLeft: 50 * 60, mfaSecondsLeft: 7 * 3600 + 50 * 60 });
    expect(Object.keys(row)).not.toContain('token');
    expect(await f.client.getSession(a.id)).toEqual(row);
  });

  it('GET /sessions/:id/env gives the token and variables of a session the CLI reuses', async () => {
    const f = await start();
    const a = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const env = await f.client.sessionEnv(a.id);
    expect(env).toEqual({ id: a.id, profile: 'account-a', kind: 'ecs', uri: a.uri, token: a.token, env: a.env });
  });

  it('DELETE /sessions/:id stops a session; unknown ids are SESSION_NOT_FOUND (404)', async () => {
    const f = await start();
    const a = await f.client.createSession({ profile: 'account-a', kind: 'imds' });
    await f.client.stopSession(a.id);
    expect(await f.client.listSessions()).toEqual([]);
    await expect(f.client.stopSession(a.id)).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    const res = await raw(f.daemon.paths.socket, 'DELETE', `/sessions/${a.id}`);
    expect(res.status).toBe(404);
    expect(res.json.Code).toBe('SESSION_NOT_FOUND');
    expect(res.json.Hint).toContain('vault session ls');
  });

  it('DELETE /sessions stops every session', async () => {
    const f = await start();
    const a = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const b = await f.client.createSession({ profile: 'account-b', kind: 'imds' });
    expect((await f.client.stopAllSessions()).sort()).toEqual([a.id, b.id].sort());
    expect((await f.client.status()).sessions).toBe(0);
  });

  it('POST /sessions/:id/renew revives a session that needs MFA', async () => {
    const f = await start();
    const a = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    await (f.scheduler as ManualScheduler).advance(8 * HOUR + 10 * MIN);
    const before = await f.client.getSession(a.id);
    expect(before.state).toBe('needs-mfa');
    await expect(f.client.renewSession(a.id, 'bad')).rejects.toMatchObject({ code: 'MFA_INVALID' });
    const after = await f.client.renewSession(a.id, '654321');
    expect(after).toMatchObject({ id: a.id, uri: a.uri, state: 'active', credentialSecondsLeft: 3600 });
    expect(f.factory.last.renewCodes).toEqual(['654321']);
  });

  it('POST /sessions/:id/renew without a code retries now', async () => {
    const f = await start();
    const a = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const source = f.factory.last;
    await f.client.renewSession(a.id);
    expect(source.fetchCalls).toBe(2);
    expect(source.renewCodes).toEqual([]);
  });

  it('GET /sessions/by-profile/:profile/credentials answers from the cache, with no STS call', async () => {
    const f = await start();
    await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const source = f.factory.last;
    const results = await Promise.all(Array.from({ length: 100 }, () => f.client.credentialsForProfile('account-a')));
    expect(source.fetchCalls).toBe(1);
    const first = results[0]!;
    expect(first.accessKeyId).toBe('ASIAFAKE000000000001');
    expect(first.expiration).toBeInstanceOf(Date);
    expect(first.region).toBe('ap-northeast-1');
    expect(await f.client.credentialsForProfile('nobody')).toBeUndefined();
    const records = f.log!.records().filter((r) => r.route === 'control-export');
    expect(records).toHaveLength(100);
  });

  it('unknown routes are 404 JSON', async () => {
    const f = await start();
    const res = await raw(f.daemon.paths.socket, 'GET', '/nope');
    expect(res.status).toBe(404);
    expect(res.json.Code).toBe('NOT_FOUND');
  });

  it('POST /shutdown answers, then stops the daemon and removes its files', async () => {
    const f = await start();
    await f.client.createSession({ profile: 'account-a', kind: 'imds' });
    await f.client.shutdown();
    await f.daemon.closed;
    expect(await f.client.isRunning()).toBe(false);
    expect(() => statSync(f.daemon.paths.socket)).toThrow();
    expect(() => statSync(f.daemon.paths.pidFile)).toThrow();
    expect(() => statSync(f.daemon.paths.stateFile)).toThrow();
    expect(f.log!.records().some((r) => r.audit === 'session-stop')).toBe(true);
  });
});
