import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, VaultError } from '@vault/core';
import type { CredentialSourceFactory, ResolveRequest } from '../credentialSource.js';
import { FakeSourceFactory, startTestDaemon } from '@vault/stand-ins/server';

const HOUR = 3_600_000;
type Fixture = Awaited<ReturnType<typeof startTestDaemon>>;
let fixture: Fixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** A fake factory that also resolves commands' requests, recording them. */
function resolvingFactory(clock: ManualClock, resolve?: (r: ResolveRequest) => Promise<void>) {
  const fake = new FakeSourceFactory({ clock, roleDurationMs: HOUR, mfaDurationMs: 8 * HOUR });
  const seen: ResolveRequest[] = [];
  const factory: CredentialSourceFactory = {
    create: (r) => fake.create(r),
    async resolve(r) {
      seen.push(r);
      await resolve?.(r);
      return {
        credentials: { accessKeyId: 'ASIARESOLVED', secretAccessKey: 'resolved-secret', sessionToken: 'resolved-token', expiration: new Date(clock.now() + HOUR) },
        region: 'eu-west-1',
      };
    },
  };
  return { factory, seen };
}

function post(socketPath: string, body: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'POST', path: '/credentials', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('POST /credentials (commands asking the daemon, as ssh-agent)', () => {
  it('resolves through the factory with the command options and environment, and audits it', async () => {
    const clock = new ManualClock(Date.now());
    const { factory, seen } = resolvingFactory(clock);
    fixture = await startTestDaemon({ clock, sourceFactory: factory });
    const answer = await fixture.client.resolveCredentials({
      profile: 'account-a',
      environment: 'env-key',
      region: 'eu-west-1',
      durationSeconds: 3600,
      mfaToken: '123456',
      backend: 'file',
    });
    expect(answer).toMatchObject({ source: 'keyring', accessKeyId: 'ASIARESOLVED', region: 'eu-west-1', profile: 'account-a' });
    expect(answer.expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(seen).toEqual([{ profile: 'account-a', environment: 'env-key', region: 'eu-west-1', durationSeconds: 3600, mfaToken: '123456', backend: 'file' }]);
    await fixture.daemon.logger.flush();
    const audit = fixture.log!.lines.map((l) => JSON.parse(l)).find((l) => l.route === 'control-resolve');
    expect(audit).toMatchObject({ audit: 'credentials-served', profile: 'account-a' });
    expect(fixture.log!.lines.join('\n')).not.toContain('resolved-secret');
  });

  it('credential_process prefers a live session of the profile: its served credentials, no resolve', async () => {
    const clock = new ManualClock(Date.now());
    const { factory, seen } = resolvingFactory(clock);
    fixture = await startTestDaemon({ clock, sourceFactory: factory });
    const session = await fixture.client.createSession({ profile: 'account-a', kind: 'ecs' });
    const answer = await fixture.client.resolveCredentials({ profile: 'account-a', environment: 'e', preferSession: true });
    expect(answer).toMatchObject({ source: 'session', sessionId: session.id });
    expect(answer.accessKeyId).not.toBe('ASIARESOLVED');
    expect(seen).toHaveLength(0);
    // Options the session was not started with go to the chain instead.
    expect((await fixture.client.resolveCredentials({ profile: 'account-a', environment: 'e', preferSession: true, durationSeconds: 900 })).source).toBe('keyring');
  });

  it('another configuration is refused with DAEMON_MISMATCH (409), so the command resolves locally', async () => {
    const clock = new ManualClock(Date.now());
    const { factory } = resolvingFactory(clock, async () => {
      throw new VaultError('DAEMON_MISMATCH', 'the vault daemon was started with another configuration');
    });
    fixture = await startTestDaemon({ clock, sourceFactory: factory });
    const res = await post(fixture.daemon.paths.socket, JSON.stringify({ profile: 'account-a', environment: 'other' }));
    expect(res.status).toBe(409);
    expect(res.json.Code).toBe('DAEMON_MISMATCH');
    await expect(fixture.client.resolveCredentials({ profile: 'account-a', environment: 'other' })).rejects.toMatchObject({ code: 'DAEMON_MISMATCH' });
  });

  it('a daemon whose sources cannot resolve says DAEMON_MISMATCH; malformed bodies are USAGE', async () => {
    fixture = await startTestDaemon();
    expect((await post(fixture.daemon.paths.socket, JSON.stringify({ profile: 'a', environment: 'e' }))).json.Code).toBe('DAEMON_MISMATCH');
    for (const body of [
      JSON.stringify({ profile: 'a' }),
      JSON.stringify({ profile: 'a', environment: 'e', mfaToken: '12ab56' }),
      JSON.stringify({ profile: 'a', environment: 'e', durationSeconds: 60 }),
    ]) {
      const res = await post(fixture.daemon.paths.socket, body);
      expect(res.status, body).toBe(400);
      expect(res.json.Code, body).toBe('USAGE');
    }
  });
});
