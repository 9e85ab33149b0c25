import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isVaultError, VaultError, type Clock, type TemporaryCredentials } from '@vault/core';
import type { CredentialSource } from '../credentialSource.js';
import {
  CONTAINER_REFRESH_POLICY,
  IMDS_REFRESH_POLICY,
  RefreshingCredentials,
  type BackoffPolicy,
  type FailureAction,
  type PreparedCredentials,
} from './refreshingCredentials.js';
import type { Scheduler } from './scheduler.js';

export type SessionKind = 'ecs' | 'imds';
/** `needs-login`: the IAM Identity Center sign-in (and its refresh token) ran out; `vault session renew` signs in. */
export type SessionState = 'active' | 'needs-mfa' | 'needs-login' | 'failed' | 'stopped';

/** The listener an IMDS session owns (IMDS paths carry no session, so each gets its own port). */
export interface ImdsListener {
  readonly port: number;
  close(): Promise<void>;
}

export interface SessionError {
  code: string;
  message: string;
  at: number;
}

export interface SessionInit {
  source: CredentialSource;
  kind: SessionKind;
  lazy?: boolean;
  clock: Clock;
  /** Keeps the session's credentials warm on timers; without it refreshes happen on request. */
  scheduler?: Scheduler;
  random?: () => number;
  backoff?: BackoffPolicy;
  id?: string;
  token?: string;
  /** Epoch ms; a restored session keeps the time it was first created. */
  createdAt?: number;
  /** What the source was created from (kept so the session can be restored after a crash). */
  request?: SessionRequestInfo;
  /** The `vault exec --server` process this session belongs to, if any. */
  owner?: SessionOwnerInfo;
  /** Brought back from the keyring by a restarted daemon. */
  restored?: boolean;
  /** Told about refresh failures and successes (logging). */
  events?: SessionEvents;
}

/** The parts of a session's source request that are not secret (never the MFA code). */
export interface SessionRequestInfo {
  durationSeconds?: number;
  region?: string;
  noSession?: boolean;
}

export interface SessionOwnerInfo {
  pid: number;
  startTime?: string;
}

export interface SessionEvents {
  refreshed?(session: Session, prepared: PreparedCredentials, roleArn?: string): void;
  refreshFailed?(session: Session, error: unknown, info: { action: FailureAction; retryAt: number | undefined; stillServing: boolean; roleArn?: string }): void;
}

/** A role ARN for the ECS `role-arn/<ARN>` route, checked strictly before any STS call. */
const ROLE_ARN =
  /^arn:aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?:iam::\d{12}:role\/(?:[\w+=,.@-]{1,64}\/){0,32}[\w+=,.@-]{1,64}$/;
const MAX_ROLE_ARN_LENGTH = 2048;
/**
 * Bounds memory and background work for the role-arn route: past it, the oldest role cache (first
 * created) is dropped, so a token holder cannot grow the daemon one ARN at a time.
 */
export const MAX_ROLE_CACHES = 32;

export function isRoleArn(value: string): boolean {
  return value.length <= MAX_ROLE_ARN_LENGTH && ROLE_ARN.test(value);
}

/** 48 random bits in hex: short enough to type in `vault session stop ID`, never a secret. */
export function newSessionId(): string {
  return randomBytes(6).toString('hex');
}

/** 256 random bits, base64url: no CR/LF or other characters botocore and Go reject in a header. */
export function newSessionToken(): string {
  return randomBytes(32).toString('base64url');
}

/** One-shot SHA-256 (crypto.hash: no Hash object per request on the hot path). */
function digest(value: string): Buffer {
  return hash('sha256', value, 'buffer');
}

function errorCode(error: unknown): string {
  return isVaultError(error) ? error.code : 'INTERNAL';
}

function errorMessage(error: unknown): string {
  if (isVaultError(error)) return error.message;
  return 'unexpected failure refreshing credentials';
}

/**
 * One credential session in the daemon: a profile's CredentialSource, the token its clients
 * present, and a refresh-ahead cache of the credentials it serves (plus one per role-arn route).
 * The id, token and URI survive `renew`.
 */
export class Session {
  readonly id: string;
  readonly token: string;
  readonly kind: SessionKind;
  readonly lazy: boolean;
  readonly createdAt: number;
  readonly source: CredentialSource;
  readonly credentials: RefreshingCredentials;
  readonly request: SessionRequestInfo;
  readonly owner: SessionOwnerInfo | undefined;
  readonly restored: boolean;
  /** Successful credential responses (any route). */
  requestsServed = 0;
  imds: ImdsListener | undefined;
  /**
   * A restored session that cannot be served as it was (its port was taken while the daemon was
   * down): state `failed`, with this as its error, until `renew` clears it.
   */
  fault: SessionError | undefined;

  private readonly tokenDigest: Buffer;
  private readonly tokenBytes: Buffer;
  private readonly roles = new Map<string, RefreshingCredentials>();
  private needsMfa = false;
  private needsLogin = false;
  private stopped = false;
  private readonly init: SessionInit;

  constructor(init: SessionInit) {
    this.init = init;
    this.source = init.source;
    this.kind = init.kind;
    this.lazy = init.lazy ?? false;
    this.id = init.id ?? newSessionId();
    this.token = init.token ?? newSessionToken();
    if (/[\r\n]/.test(this.token)) throw new VaultError('INTERNAL', 'session token must not contain CR or LF');
    this.tokenDigest = digest(this.token);
    this.tokenBytes = Buffer.from(this.token, 'utf8');
    this.createdAt = init.createdAt ?? init.clock.now();
    this.request = init.request ?? {};
    this.owner = init.owner;
    this.restored = init.restored ?? false;
    this.credentials = this.newCache(() => this.source.fetchCredentials(), init.scheduler);
  }

  get profile(): string {
    return this.source.profile;
  }

  get region(): string | undefined {
    return this.source.region;
  }

  get state(): SessionState {
    if (this.stopped) return 'stopped';
    if (this.fault) return 'failed';
    if (this.needsMfa) return 'needs-mfa';
    if (this.needsLogin) return 'needs-login';
    const cache = this.credentials;
    if (cache.lastError !== undefined && !cache.latest?.servable(this.init.clock.now())) return 'failed';
    return 'active';
  }

  get lastError(): SessionError | undefined {
    if (this.fault) return this.fault;
    const cache = this.credentials;
    if (cache.lastError === undefined || cache.lastErrorAt === undefined) return undefined;
    return { code: errorCode(cache.lastError), message: errorMessage(cache.lastError), at: cache.lastErrorAt };
  }

  /**
   * Constant-time check of a presented token. timingSafeEqual needs equal lengths: a presented
   * value of the token's byte length is compared as it is; any other is first hashed to a digest
   * of the token digest's length (and cannot match). Only whether the length is right can be
   * told from the timing, and every token has the same, documented length (43 characters), so
   * nothing about this token leaks — and the common case costs no hash on the hot path.
   */
  tokenMatches(presented: string | undefined): boolean {
    if (typeof presented !== 'string' || presented.length === 0) return false;
    const bytes = Buffer.from(presented, 'utf8');
    if (bytes.length === this.tokenBytes.length) return timingSafeEqual(bytes, this.tokenBytes);
    return timingSafeEqual(digest(presented), this.tokenDigest) && false;
  }

  /** The first upstream call of a non-lazy session; creation fails with the source's error. */
  async start(): Promise<void> {
    await this.credentials.refresh();
  }

  /** Servable credentials now, or undefined (then call `credentialsFor`). Counts nothing. */
  currentCredentials(): PreparedCredentials | undefined {
    if (this.stopped) return undefined;
    return this.credentials.current();
  }

  /** Servable credentials, waiting on upstream only when nothing servable is cached. */
  async credentialsFor(): Promise<PreparedCredentials> {
    this.assertRunning();
    try {
      return await this.credentials.get();
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  /** How many role-arn caches the session holds (at most MAX_ROLE_CACHES). */
  get roleCacheCount(): number {
    return this.roles.size;
  }

  /** Credentials of another role assumed from this session (the ECS `role-arn/<ARN>` route). */
  roleCredentialsNow(roleArn: string): PreparedCredentials | undefined {
    if (this.stopped) return undefined;
    return this.roles.get(roleArn)?.current();
  }

  async roleCredentialsFor(roleArn: string): Promise<PreparedCredentials> {
    this.assertRunning();
    if (!isRoleArn(roleArn)) {
      throw new VaultError('USAGE', 'not a valid IAM role ARN', { hint: 'use arn:aws:iam::123456789012:role/NAME' });
    }
    let cache = this.roles.get(roleArn);
    if (!cache) {
      if (this.roles.size >= MAX_ROLE_CACHES) {
        const [oldestArn, oldest] = this.roles.entries().next().value as [string, RefreshingCredentials];
        oldest.stop();
        this.roles.delete(oldestArn);
      }
      // Role caches refresh on request only: a role asked for once is not kept warm for hours.
      cache = this.newCache(() => this.source.assumeRole(roleArn), undefined, roleArn);
      this.roles.set(roleArn, cache);
    }
    try {
      return await cache.get();
    } catch (error) {
      throw this.unavailable(error, roleArn);
    }
  }

  /**
   * Revive the session: with a code, one GetSessionToken through the source; then a fresh fetch
   * with backoff and any halt cleared. Keeps the id, token and URI.
   */
  async renew(mfaToken?: string): Promise<PreparedCredentials> {
    this.assertRunning();
    if (mfaToken !== undefined) await this.source.renew(mfaToken);
    this.needsMfa = false;
    this.needsLogin = false;
    this.credentials.resume();
    for (const role of this.roles.values()) role.resume();
    return this.credentials.refresh(true);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.credentials.stop();
    for (const role of this.roles.values()) role.stop();
    this.roles.clear();
    const imds = this.imds;
    this.imds = undefined;
    await imds?.close();
  }

  /**
   * A restored session whose MFA session has already ended: say so now (`vault session ls` shows
   * needs-mfa) and make no upstream call until `renew`; credentials still servable keep being served.
   */
  markNeedsMfa(error: unknown): void {
    this.needsMfa = true;
    this.credentials.halt(error);
  }

  /** As markNeedsMfa, for a restored session whose IAM Identity Center sign-in has ended: needs-login. */
  markNeedsLogin(error: unknown): void {
    this.needsLogin = true;
    this.credentials.halt(error);
  }

  /** MFA session end as the source reports it. */
  mfaExpiration(): Date | undefined {
    try {
      return this.source.mfaSessionExpiration();
    } catch {
      return undefined;
    }
  }

  /**
   * The error a client sees when nothing servable is left: what happened, and what to run.
   * Messages carry codes and profile names, never secret values.
   */
  unavailable(error: unknown, roleArn?: string): VaultError {
    const what = roleArn ? `role ${roleArn} via session ${this.id}` : `session ${this.id}`;
    if (this.stopped) return new VaultError('SESSION_NOT_FOUND', `${what} has been stopped`);
    if (isVaultError(error) && error.code === 'SESSION_NEEDS_MFA') {
      return new VaultError(
        'SESSION_NEEDS_MFA',
        `${what} (profile ${this.profile}) has no valid credentials left: its MFA session has expired`,
        { hint: `run \`vault session renew ${this.id}\` to enter a new MFA code; the URI and token stay the same`, cause: error },
      );
    }
    if (isVaultError(error) && error.code === 'SSO_LOGIN_REQUIRED') {
      return new VaultError(
        'SSO_LOGIN_REQUIRED',
        `${what} (profile ${this.profile}) has no valid credentials left: its IAM Identity Center sign-in has ended`,
        { hint: `run \`vault session renew ${this.id}\` to sign in again; the URI and token stay the same`, cause: error },
      );
    }
    const cache = roleArn ? this.roles.get(roleArn) : this.credentials;
    const retryIn = cache && cache.nextAttemptAt > 0 ? Math.max(0, Math.ceil((cache.nextAttemptAt - this.init.clock.now()) / 1000)) : undefined;
    const retry = retryIn === undefined ? '' : `; retrying in ${retryIn} s`;
    return new VaultError(
      isVaultError(error) ? error.code : 'INTERNAL',
      `${what} (profile ${this.profile}) has no valid credentials left: refreshing them failed (${errorCode(error)}: ${errorMessage(error)})${retry}`,
      { hint: `see \`vault session ls\`, or run \`vault session renew ${this.id}\` to retry now`, cause: error },
    );
  }

  private assertRunning(): void {
    if (this.stopped) throw new VaultError('SESSION_NOT_FOUND', `session ${this.id} has been stopped`);
  }

  private newCache(fetch: () => Promise<TemporaryCredentials>, scheduler: Scheduler | undefined, roleArn?: string): RefreshingCredentials {
    const init = this.init;
    return new RefreshingCredentials({
      fetch,
      policy: this.kind === 'imds' && roleArn === undefined ? IMDS_REFRESH_POLICY : CONTAINER_REFRESH_POLICY,
      clock: init.clock,
      ...(scheduler ? { scheduler } : {}),
      ...(init.random ? { random: init.random } : {}),
      ...(init.backoff ? { backoff: init.backoff } : {}),
      classify: (error) => {
        if (isVaultError(error) && error.code === 'SESSION_NEEDS_MFA') {
          // Retrying cannot help: the daemon never prompts, so wait for `vault session renew`.
          this.needsMfa = true;
          return 'halt';
        }
        if (isVaultError(error) && error.code === 'SSO_LOGIN_REQUIRED') {
          // Likewise: only the CLI can run the device sign-in (`vault session renew`).
          this.needsLogin = true;
          return 'halt';
        }
        return 'retry';
      },
      onFetched: (prepared) => {
        // The session's own credentials came through: whatever asked for MFA is behind us.
        if (roleArn === undefined) {
          this.needsMfa = false;
          this.needsLogin = false;
        }
        init.events?.refreshed?.(this, prepared, roleArn);
      },
      onFailed: (error, info) => init.events?.refreshFailed?.(this, error, roleArn ? { ...info, roleArn } : info),
    });
  }
}
