import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, VaultError } from '@vault/core';
import { createHarness, FakeCredentialSource, startTestDaemon } from '@vault/stand-ins/server';
import { isRoleArn, newSessionId, newSessionToken, Session } from './session.js';
import { SessionRegistry } from './sessionRegistry.js';

const MIN = 60_000;

let closer: (() => Promise<void>) | undefined;
afterEach(async () => {
  await closer?.();
  closer = undefined;
});

describe('Session', () => {
  it('ids are 12 hex digits and tokens 256-bit base64url', () => {
    expect(newSessionId()).toMatch(/^[0-9a-f]{12}$/);
    expect(newSessionToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('role ARNs are checked strictly', () => {
    expect(isRoleArn('arn:aws:iam::123456789012:role/name')).toBe(true);
    expect(isRoleArn('arn:aws-cn:iam::123456789012:role/path/name+=,.@-_')).toBe(true);
    expect(isRoleArn('arn:aws-us-gov:iam::123456789012:role/x')).toBe(true);
    expect(isRoleArn('arn:aws:iam::123456789012:role/x/')).toBe(false);
    expect(isRoleArn('arn:aws:iam::123456789012:role//x')).toBe(false);
    expect(isRoleArn('arn:aws:iam::123456789012:role/x\n')).toBe(false);
    expect(isRoleArn(' arn:aws:iam::123456789012:role/x')).toBe(false);
  });

  it('state: active → failed (nothing valid, last refresh failed) → active after a successful retry', async () => {
    const clock = new ManualClock();
    const source = new FakeCredentialSource({ clock });
    const session = new Session({ source, kind: 'ecs', clock, lazy: true, random: () => 0 });
    expect(session.state).toBe('active');
    source.failNext(new VaultError('STS_UNAVAILABLE', 'down'));
    await expect(session.credentialsFor()).rejects.toMatchObject({ code: 'STS_UNAVAILABLE' });
    expect(session.state).toBe('failed');
    expect(session.lastError).toMatchObject({ code: 'STS_UNAVAILABLE', message: 'down' });
    clock.advance(2_500);
    await session.credentialsFor();
    expect(session.state).toBe('active');
    expect(session.lastError).toBeUndefined();
    await session.stop();
    expect(session.state).toBe('stopped');
    await expect(session.credentialsFor()).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  });

  it('renew without a code retries at once, skipping the backoff', async () => {
    const clock = new ManualClock();
    const source = new FakeCredentialSource({ clock });
    const session = new Session({ source, kind: 'ecs', clock, lazy: true });
    source.failNext(new VaultError('STS_UNAVAILABLE', 'down'));
    await expect(session.credentialsFor()).rejects.toBeDefined();
    await expect(session.credentialsFor()).rejects.toBeDefined(); // backoff: no call
    expect(source.fetchCalls).toBe(1);
    await session.renew();
    expect(source.fetchCalls).toBe(2);
    expect(session.currentCredentials()).toBeDefined();
  });

  it('the role-arn caches are bounded', async () => {
    const clock = new ManualClock();
    const source = new FakeCredentialSource({ clock });
    const session = new Session({ source, kind: 'ecs', clock });
    for (let i = 0; i < 40; i++) await session.roleCredentialsFor(`arn:aws:iam::123456789012:role/r${i}`);
    // The oldest were evicted: asking again calls STS again.
    await session.roleCredentialsFor('arn:aws:iam::123456789012:role/r0');
    expect(source.assumeCalls.get('arn:aws:iam::123456789012:role/r0')).toBe(2);
    await session.roleCredentialsFor('arn:aws:iam::123456789012:role/r39');
    expect(source.assumeCalls.get('arn:aws:iam::123456789012:role/r39')).toBe(1);
  });
});

describe('SessionRegistry', () => {
  it('byProfile puts the session with the most servable life first', async () => {
    const h = createHarness();
    const old = await h.start();
    h.clock.advance(30 * MIN);
    const young = await h.start();
    await h.start({ profile: 'other' });
    expect(h.registry.byProfile('account-a').map((s) => s.id)).toEqual([young.session.id, old.session.id]);
  });

  it('refuses sessions beyond its bound', async () => {
    const h = createHarness();
    const registry = new SessionRegistry({ sourceFactory: h.factory, clock: h.clock, maxSessions: 2 });
    await registry.create({ profile: 'a', kind: 'ecs' });
    await registry.create({ profile: 'b', kind: 'ecs' });
    await expect(registry.create({ profile: 'c', kind: 'ecs' })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('stop() of an unknown id is SESSION_NOT_FOUND; stopping stops refresh timers', async () => {
    const h = createHarness();
    const { session } = await h.start();
    expect(h.scheduler.pending).toBe(1);
    await h.registry.stop(session.id);
    expect(h.scheduler.pending).toBe(0);
    await expect(h.registry.stop(session.id)).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  });

  it('stopping an IMDS session closes its listener', async () => {
    const f = await startTestDaemon();
    closer = f.close;
    const created = await f.client.createSession({ profile: 'account-a', kind: 'imds' });
    const endpoint = created.imdsEndpoint!;
    const put = () => fetch(`${endpoint}latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } });
    expect((await put()).status).toBe(200);
    await f.client.stopSession(created.id);
    await expect(put()).rejects.toThrow();
  });
});
