import { VaultError, type Clock, type TemporaryCredentials } from '@vault/core';
import { serializeEcsCredentials, serializeImdsCredentials } from '../wire.js';
import type { Scheduler } from './scheduler.js';

const MINUTE = 60_000;

/** How much life served credentials keep, and when a background refresh starts. */
export interface RefreshPolicy {
  /** Never serve credentials with less life left than this. */
  minLifeMs: number;
  /** Start refreshing upstream, in the background, once this much life is left. */
  refreshAheadMs: number;
}

/**
 * Container route: botocore's advisory refresh starts at 15 min left and its mandatory refresh at
 * 10 min, so everything served keeps ≥ 15 min; refreshing from 20 min left leaves 5 min of retries
 * before that floor is reached.
 */
export const CONTAINER_REFRESH_POLICY: RefreshPolicy = { minLifeMs: 15 * MINUTE, refreshAheadMs: 20 * MINUTE };

/**
 * IMDS route: botocore's IMDS fetcher "stretches" credentials that expire within 15 min and some
 * clients cache instance credentials longer, so IMDS serves ≥ 30 min and refreshes from 35 min.
 */
export const IMDS_REFRESH_POLICY: RefreshPolicy = { minLifeMs: 30 * MINUTE, refreshAheadMs: 35 * MINUTE };

/** Retry delays after a failed refresh: exponential from `baseMs`, capped at `maxMs`, then jittered. */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * 5 s doubling to 5 min: within the 5-minute window between refresh start and the 15-minute floor
 * that is six or seven tries, without hammering STS (throttling is one of the failures) when a
 * session is broken for hours.
 */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 5_000, maxMs: 5 * MINUTE };

/**
 * Credentials that live shorter than refresh-ahead plus this (e.g. `--duration 15m`) cannot keep
 * the policy's minimum at all; they are served with a proportional window instead (see prepare).
 */
const MIN_SERVING_WINDOW_MS = 5 * MINUTE;
/**
 * The least life the daemon takes from a cache upstream (a cached GetSessionToken session that is
 * handed out as it is): past the largest refresh-ahead point (IMDS, 35 min) by a serving window,
 * so that what a refresh brings back is not due for refresh at once. Asking for less let the
 * chain return the very session being refreshed, which then went out with minutes left.
 */
export const UPSTREAM_MIN_LIFE_MS = Math.max(CONTAINER_REFRESH_POLICY.refreshAheadMs, IMDS_REFRESH_POLICY.refreshAheadMs) + MIN_SERVING_WINDOW_MS;
/** Never refetch sooner than this after a success, whatever upstream returned. */
const MIN_REFRESH_INTERVAL_MS = 10_000;

/**
 * One set of upstream credentials with what the routes send, serialized once: the container and
 * IMDS bodies are built on first use and reused for every request until the next refresh.
 */
export class PreparedCredentials {
  readonly expiresAt: number;
  private ecs: Buffer | undefined;
  private imds: Buffer | undefined;

  constructor(
    readonly credentials: TemporaryCredentials,
    readonly fetchedAt: number,
    /** Serve only while at least this much life is left. */
    readonly minLifeMs: number,
    /** Start a background refresh from this time on. */
    readonly refreshAt: number,
  ) {
    this.expiresAt = credentials.expiration.getTime();
  }

  ecsBody(): Buffer {
    return (this.ecs ??= serializeEcsCredentials(this.credentials));
  }

  imdsBody(): Buffer {
    return (this.imds ??= serializeImdsCredentials(this.credentials, new Date(this.fetchedAt)));
  }

  /** Whether these may still be served at `now`. */
  servable(now: number): boolean {
    return this.expiresAt - now >= this.minLifeMs;
  }

  static prepare(credentials: TemporaryCredentials, fetchedAt: number, policy: RefreshPolicy): PreparedCredentials {
    const expiresAt = credentials.expiration.getTime();
    const lifetime = expiresAt - fetchedAt;
    let minLifeMs = policy.minLifeMs;
    let refreshAheadMs = policy.refreshAheadMs;
    if (lifetime < policy.refreshAheadMs + MIN_SERVING_WINDOW_MS) {
      // Too short-lived for the policy (the person asked for a short --duration): serve them until
      // half their life is left and refresh from three quarters, so a client refreshing on its own
      // schedule still gets a new set well before it runs out.
      minLifeMs = Math.min(policy.minLifeMs, Math.floor(lifetime / 2));
      refreshAheadMs = Math.min(policy.refreshAheadMs, Math.floor((lifetime * 3) / 4));
    }
    const refreshAt = Math.max(expiresAt - refreshAheadMs, fetchedAt + MIN_REFRESH_INTERVAL_MS);
    return new PreparedCredentials(credentials, fetchedAt, minLifeMs, refreshAt);
  }
}

/** What to do after a failed fetch: retry with backoff, or stop until `resume()` (needs MFA). */
export type FailureAction = 'retry' | 'halt';

export interface RefreshingCredentialsInit {
  /** The upstream call (AssumeRole over the MFA session, …). */
  fetch: () => Promise<TemporaryCredentials>;
  policy: RefreshPolicy;
  clock: Clock;
  /** When given, refreshes run on timers too, so idle sessions stay warm; otherwise on request only. */
  scheduler?: Scheduler;
  /** Source of jitter in [0, 1). */
  random?: () => number;
  backoff?: BackoffPolicy;
  classify?: (error: unknown) => FailureAction;
  onFetched?: (prepared: PreparedCredentials) => void;
  onFailed?: (error: unknown, info: { action: FailureAction; retryAt: number | undefined; stillServing: boolean }) => void;
}

/**
 * A refresh-ahead cache around one upstream call (the "caching wraps a provider" habit):
 * - serves the current credentials from memory while they keep the policy's minimum life;
 * - from `refreshAt` on, refreshes in the background while still serving the current ones;
 * - however many callers ask at once, one upstream call is in flight (single flight);
 * - a failed refresh is retried with exponential backoff and jitter, and counted; the current
 *   credentials keep being served while they are above the minimum;
 * - with nothing servable left, callers wait on a fetch, or get the last error at once while a
 *   backoff delay runs or while halted.
 */
export class RefreshingCredentials {
  private entry: PreparedCredentials | undefined;
  private inflight: Promise<PreparedCredentials> | undefined;
  private cancelTimer: (() => void) | undefined;
  private stopped = false;
  private readonly random: () => number;
  private readonly backoff: BackoffPolicy;

  /** Upstream calls started. */
  fetches = 0;
  /** Upstream calls that failed, in total. */
  failures = 0;
  /** Failures since the last success; drives the backoff. */
  consecutiveFailures = 0;
  /** No upstream call before this time (0: none pending). */
  nextAttemptAt = 0;
  /** Set by a failure whose classify() said 'halt'; cleared by resume() and by a successful fetch. */
  halted = false;
  lastError: unknown;
  lastErrorAt: number | undefined;

  constructor(private readonly init: RefreshingCredentialsInit) {
    this.random = init.random ?? Math.random;
    this.backoff = init.backoff ?? DEFAULT_BACKOFF;
  }

  get policy(): RefreshPolicy {
    return this.init.policy;
  }

  /** The latest credentials whether or not they may still be served (for listings). */
  get latest(): PreparedCredentials | undefined {
    return this.entry;
  }

  get refreshing(): boolean {
    return this.inflight !== undefined;
  }

  /**
   * The synchronous fast path: servable credentials, or undefined when the caller must take the
   * slow path (`get`). Starts a background refresh when one is due.
   */
  current(): PreparedCredentials | undefined {
    const now = this.init.clock.now();
    const entry = this.entry;
    if (entry === undefined || !entry.servable(now)) return undefined;
    if (now >= entry.refreshAt && this.inflight === undefined) this.refreshInBackground(now);
    return entry;
  }

  /** Servable credentials, fetching them when there are none (shared with concurrent callers). */
  async get(): Promise<PreparedCredentials> {
    const ready = this.current();
    if (ready) return ready;
    if (this.inflight) return this.inflight;
    if (this.stopped) throw new VaultError('INTERNAL', 'the session has been stopped');
    if (this.halted || this.init.clock.now() < this.nextAttemptAt) throw this.lastErrorOrInternal();
    return this.startFetch();
  }

  /**
   * A fetch now, whatever the cache holds (renew, first fetch of a non-lazy session). Joins a
   * fetch already in flight unless `fresh` asks for one that starts after this call.
   */
  async refresh(fresh = false): Promise<PreparedCredentials> {
    if (this.inflight) {
      if (!fresh) return this.inflight;
      await this.inflight.catch(() => undefined);
      if (this.inflight) return this.inflight;
    }
    return this.startFetch();
  }

  /**
   * Puts credentials fetched earlier (by a daemon that was killed) back in the cache without an
   * upstream call, and arms the refresh-ahead timer for them. Ignored when they have already
   * expired or when something was fetched since. Returns whether they may be served now.
   */
  seed(credentials: TemporaryCredentials, fetchedAt: number): boolean {
    const now = this.init.clock.now();
    if (this.entry !== undefined || this.stopped || credentials.expiration.getTime() <= now) return false;
    this.entry = PreparedCredentials.prepare(credentials, Math.min(fetchedAt, now), this.init.policy);
    this.schedule();
    return this.entry.servable(now);
  }

  /**
   * Stops upstream calls until `resume()` — as a fetch classified 'halt' does — when the caller
   * already knows a fetch would fail that way (a restored session whose MFA session has ended).
   * What is cached keeps being served while it is servable.
   */
  halt(error: unknown): void {
    this.halted = true;
    this.lastError = error;
    this.lastErrorAt = this.init.clock.now();
    this.schedule();
  }

  /** Clear a halt and any backoff (after `renew`). */
  resume(): void {
    this.halted = false;
    this.nextAttemptAt = 0;
    this.consecutiveFailures = 0;
  }

  /** Called by timers; also safe to call at any time. */
  tick(): void {
    if (this.stopped) return;
    const now = this.init.clock.now();
    if (this.inflight || this.halted || now < this.nextAttemptAt) return this.schedule();
    const entry = this.entry;
    // A background retry after a failure, or the refresh-ahead point of the current credentials.
    if (this.nextAttemptAt > 0 || (entry && now >= entry.refreshAt)) this.refreshInBackground(now);
    else this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private refreshInBackground(now: number): void {
    if (this.halted || this.stopped || now < this.nextAttemptAt) return;
    this.startFetch().catch(() => {
      // Counted and logged in startFetch; callers of current() keep the servable credentials.
    });
  }

  private startFetch(): Promise<PreparedCredentials> {
    this.fetches++;
    const attempt = this.runFetch();
    this.inflight = attempt;
    return attempt;
  }

  private async runFetch(): Promise<PreparedCredentials> {
    try {
      const credentials = await this.init.fetch();
      const now = this.init.clock.now();
      const expiration = credentials.expiration;
      if (!(expiration instanceof Date) || Number.isNaN(expiration.getTime()) || expiration.getTime() <= now) {
        throw new VaultError('STS_FAILED', 'upstream returned credentials that have already expired');
      }
      const prepared = PreparedCredentials.prepare(credentials, now, this.init.policy);
      this.entry = prepared;
      // Upstream answered, so whatever halted us is over — including a needs-MFA failure of a
      // fetch that was already in flight when `renew` resumed us and landed after it.
      this.halted = false;
      this.consecutiveFailures = 0;
      this.nextAttemptAt = 0;
      this.lastError = undefined;
      this.lastErrorAt = undefined;
      this.inflight = undefined;
      this.init.onFetched?.(prepared);
      this.schedule();
      return prepared;
    } catch (error) {
      const now = this.init.clock.now();
      this.failures++;
      this.consecutiveFailures++;
      this.lastError = error;
      this.lastErrorAt = now;
      this.inflight = undefined;
      const action = this.init.classify?.(error) ?? 'retry';
      let retryAt: number | undefined;
      if (action === 'halt') {
        this.halted = true;
      } else {
        retryAt = now + this.backoffDelay(this.consecutiveFailures);
        this.nextAttemptAt = retryAt;
      }
      this.init.onFailed?.(error, { action, retryAt, stillServing: this.entry?.servable(now) ?? false });
      this.schedule();
      throw error;
    }
  }

  /** Equal jitter: half the exponential delay for sure, the other half at random. */
  backoffDelay(failures: number): number {
    const exp = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.max(0, failures - 1));
    return Math.round(exp / 2 + this.random() * (exp / 2));
  }

  private schedule(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const scheduler = this.init.scheduler;
    if (!scheduler || this.stopped || this.halted || this.inflight) return;
    let at: number | undefined;
    if (this.nextAttemptAt > 0) at = this.nextAttemptAt;
    else if (this.entry) at = this.entry.refreshAt;
    if (at === undefined) return;
    this.cancelTimer = scheduler.at(at, () => {
      this.cancelTimer = undefined;
      this.tick();
    });
  }

  private lastErrorOrInternal(): unknown {
    return this.lastError ?? new VaultError('INTERNAL', 'no credentials are available');
  }
}
