import { describe, expect, it } from 'vitest';
import { ManualClock, VaultError, type TemporaryCredentials } from '@vault/core';
import {
  CONTAINER_REFRESH_POLICY,
  IMDS_REFRESH_POLICY,
  PreparedCredentials,
  RefreshingCredentials,
  type RefreshingCredentialsInit,
} from './refreshingCredentials.js';
import { ManualScheduler, settle } from './scheduler.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

function creds(clock: ManualClock, lifeMs: number, n = 1): TemporaryCredentials {
  return {
    accessKeyId: `ASIA${n}`,
    secretAccessKey: `secret-${n}`,
    sessionToken: `token-${n}`,
    expiration: new Date(clock.now() + lifeMs),
  };
}

function setup(overrides: Partial<RefreshingCredentialsInit> & { lifeMs?: number; fails?: unknown[] } = {}) {
  const clock = new ManualClock();
  const scheduler = new ManualScheduler(clock);
  const fails = overrides.fails ?? [];
  let calls = 0;
  const cache = new RefreshingCredentials({
    fetch: async () => {
      calls++;
      if (fails.length > 0) throw fails.shift();
      return creds(clock, overrides.lifeMs ?? HOUR, calls);
    },
    policy: CONTAINER_REFRESH_POLICY,
    clock,
    scheduler,
    random: () => 0.5,
    ...overrides,
  });
  return { clock, scheduler, cache, fails, calls: () => calls };
}

describe('PreparedCredentials', () => {
  it('keeps the policy for normal lifetimes: serve to 15 min left, refresh from 20 min', () => {
    const clock = new ManualClock();
    const p = PreparedCredentials.prepare(creds(clock, HOUR), clock.now(), CONTAINER_REFRESH_POLICY);
    expect(p.minLifeMs).toBe(15 * MIN);
    expect(p.refreshAt).toBe(clock.now() + 40 * MIN);
    expect(p.servable(clock.now() + 45 * MIN)).toBe(true);
    expect(p.servable(clock.now() + 45 * MIN + 1)).toBe(false);
  });

  it('IMDS policy: serve to 30 min left, refresh from 35 min', () => {
    const clock = new ManualClock();
    const p = PreparedCredentials.prepare(creds(clock, HOUR), clock.now(), IMDS_REFRESH_POLICY);
    expect(p.minLifeMs).toBe(30 * MIN);
    expect(p.refreshAt).toBe(clock.now() + 25 * MIN);
  });

  it('short-lived credentials (--duration 15m) are served to half their life and refreshed from three quarters', () => {
    const clock = new ManualClock();
    const p = PreparedCredentials.prepare(creds(clock, 15 * MIN), clock.now(), CONTAINER_REFRESH_POLICY);
    expect(p.minLifeMs).toBe(7.5 * MIN);
    expect(p.refreshAt).toBe(clock.now() + 3.75 * MIN);
  });

  it('serializes each body once and reuses the bytes', () => {
    const clock = new ManualClock();
    const p = PreparedCredentials.prepare(creds(clock, HOUR), clock.now(), CONTAINER_REFRESH_POLICY);
    expect(p.ecsBody()).toBe(p.ecsBody());
    expect(p.imdsBody()).toBe(p.imdsBody());
    expect(JSON.parse(p.ecsBody().toString()).Expiration).toBe('2026-01-01T01:00:00Z');
  });
});

describe('RefreshingCredentials', () => {
  it('serves from memory without an upstream call while above the refresh point', async () => {
    const { cache, clock, calls } = setup();
    await cache.refresh();
    clock.advance(39 * MIN);
    expect(cache.current()?.credentials.accessKeyId).toBe('ASIA1');
    expect(calls()).toBe(1);
  });

  it('refreshes in the background from the refresh point while still serving the current credentials', async () => {
    const clock = new ManualClock();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let n = 0;
    const slow = new RefreshingCredentials({
      fetch: async () => {
        n++;
        if (n > 1) await gate;
        return creds(clock, HOUR, n);
      },
      policy: CONTAINER_REFRESH_POLICY,
      clock,
    });
    await slow.refresh();
    clock.advance(41 * MIN);
    expect(slow.current()?.credentials.accessKeyId).toBe('ASIA1');
    expect(slow.refreshing).toBe(true);
    expect(slow.current()?.credentials.accessKeyId).toBe('ASIA1');
    expect(n).toBe(2);
    release();
    await settle();
    expect(slow.current()?.credentials.accessKeyId).toBe('ASIA2');
  });

  it('single flight: concurrent callers of a cold cache share one upstream call', async () => {
    const { cache, calls } = setup();
    const results = await Promise.all(Array.from({ length: 200 }, () => cache.get()));
    expect(calls()).toBe(1);
    expect(new Set(results.map((r) => r.credentials.accessKeyId))).toEqual(new Set(['ASIA1']));
  });

  it('keeps idle credentials warm on the scheduler', async () => {
    const { cache, scheduler, calls } = setup();
    await cache.refresh();
    await scheduler.advance(40 * MIN - 1);
    expect(calls()).toBe(1);
    await scheduler.advance(1);
    expect(calls()).toBe(2);
    await scheduler.advance(40 * MIN);
    expect(calls()).toBe(3);
  });

  it('a failed refresh keeps serving valid credentials and retries with counted exponential backoff and jitter', async () => {
    const throttled = new VaultError('STS_THROTTLED', 'Rate exceeded');
    const { cache, scheduler, clock, fails, calls } = setup();
    await cache.refresh();
    fails.push(throttled, throttled, throttled);
    await scheduler.advance(40 * MIN); // refresh point: attempt 1 fails
    expect(calls()).toBe(2);
    expect(cache.failures).toBe(1);
    // random() = 0.5: delay = d/2 + d/4 with d = 5 s, 10 s, 20 s …
    expect(cache.nextAttemptAt - clock.now()).toBe(3_750);
    expect(cache.current()?.credentials.accessKeyId).toBe('ASIA1');
    await scheduler.advance(3_750); // attempt 2 fails
    expect(calls()).toBe(3);
    expect(cache.nextAttemptAt - clock.now()).toBe(7_500);
    await scheduler.advance(7_500); // attempt 3 fails
    expect(cache.nextAttemptAt - clock.now()).toBe(15_000);
    expect(cache.failures).toBe(3);
    expect(cache.consecutiveFailures).toBe(3);
    await scheduler.advance(15_000); // attempt 4 succeeds
    expect(calls()).toBe(5);
    expect(cache.consecutiveFailures).toBe(0);
    expect(cache.nextAttemptAt).toBe(0);
    expect(cache.current()?.credentials.accessKeyId).toBe('ASIA5');
  });

  it('requests during a backoff delay do not call upstream', async () => {
    const { cache, clock, fails, calls } = setup({ scheduler: undefined });
    await cache.refresh();
    fails.push(new VaultError('STS_UNAVAILABLE', 'down'));
    clock.advance(40 * MIN);
    cache.current(); // starts the background refresh, which fails
    await settle();
    expect(calls()).toBe(2);
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      expect(cache.current()).toBeDefined();
    }
    await settle();
    expect(calls()).toBe(2);
  });

  it('backoff is capped and jitter comes from the injected random', () => {
    const low = setup({ random: () => 0 }).cache;
    const high = setup({ random: () => 0.999999 }).cache;
    expect(low.backoffDelay(1)).toBe(2_500);
    expect(high.backoffDelay(1)).toBe(5_000);
    expect(low.backoffDelay(30)).toBe(150_000);
    expect(high.backoffDelay(30)).toBe(300_000);
  });

  it('with nothing servable left and a backoff running, get() fails at once with the last error', async () => {
    const down = new VaultError('STS_UNAVAILABLE', 'STS is down');
    const { cache, clock, fails, calls } = setup({ scheduler: undefined });
    fails.push(down, down);
    await expect(cache.get()).rejects.toBe(down);
    await expect(cache.get()).rejects.toBe(down);
    expect(calls()).toBe(1);
    clock.advance(5_000);
    await expect(cache.get()).rejects.toBe(down);
    expect(calls()).toBe(2);
    clock.advance(10_000);
    expect((await cache.get()).credentials.accessKeyId).toBe('ASIA3');
  });

  it("a 'halt' classification stops retries until resume()", async () => {
    const needsMfa = new VaultError('SESSION_NEEDS_MFA', 'expired');
    const { cache, scheduler, fails, calls } = setup({ classify: () => 'halt' });
    await cache.refresh();
    fails.push(needsMfa);
    await scheduler.advance(40 * MIN);
    expect(cache.halted).toBe(true);
    expect(scheduler.pending).toBe(0);
    await scheduler.advance(HOUR);
    expect(calls()).toBe(2);
    await expect(cache.get()).rejects.toBe(needsMfa);
    cache.resume();
    expect((await cache.refresh(true)).credentials.accessKeyId).toBe('ASIA3');
  });

  it('a needs-MFA failure that lands after resume() does not outlive the renewal: the next refresh is scheduled', async () => {
    const clock = new ManualClock();
    const scheduler = new ManualScheduler(clock);
    let calls = 0;
    let releaseHeld: ((error: unknown) => void) | undefined;
    const cache = new RefreshingCredentials({
      fetch: async () => {
        calls++;
        // The background refresh hangs until the renewal is under way, then finds the MFA session gone.
        if (calls === 2) await new Promise<void>((_resolve, reject) => (releaseHeld = reject));
        return creds(clock, HOUR, calls);
      },
      policy: CONTAINER_REFRESH_POLICY,
      clock,
      scheduler,
      random: () => 0.5,
      classify: (error) => (error instanceof VaultError && error.code === 'SESSION_NEEDS_MFA' ? 'halt' : 'retry'),
    });
    await cache.refresh();
    await scheduler.advance(40 * MIN); // refresh-ahead point: fetch 2 starts and hangs
    expect(cache.refreshing).toBe(true);
    // `session renew`: clear the halt, then ask for a fetch that starts after the one in flight.
    cache.resume();
    const renewed = cache.refresh(true);
    releaseHeld!(new VaultError('SESSION_NEEDS_MFA', 'the MFA session has ended'));
    expect((await renewed).credentials.accessKeyId).toBe('ASIA3');
    expect(cache.halted).toBe(false);
    expect(scheduler.nextAt()).toBe(clock.now() + 40 * MIN);
    await scheduler.advance(40 * MIN);
    expect(calls).toBe(4);
  });

  it('rejects credentials that are already expired as a failure', async () => {
    const clock = new ManualClock();
    const cache = new RefreshingCredentials({
      fetch: async () => creds(clock, -1),
      policy: CONTAINER_REFRESH_POLICY,
      clock,
    });
    await expect(cache.get()).rejects.toMatchObject({ code: 'STS_FAILED' });
  });
});
