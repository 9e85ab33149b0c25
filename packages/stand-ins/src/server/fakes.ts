import { VaultError, type Clock, type TemporaryCredentials } from '@vault/core';
import type { CredentialSource, CredentialSourceFactory, SessionSourceRequest } from '@vault/server';

/**
 * In-memory stand-ins for the credential chain, for the server's unit tests (and usable by the
 * cross-package tests): a CredentialSource that mints numbered credentials on the injected clock,
 * counts its upstream calls, and can fail, hang or run out of MFA session on demand.
 * Test support only (@vault/stand-ins/server): the server package ships no test double.
 */

const HOUR = 3_600_000;

export interface FakeSourceOptions {
  profile?: string;
  region?: string | undefined;
  clock: Clock;
  /** Life of each set of role credentials (AssumeRole's DurationSeconds). */
  roleDurationMs?: number;
  /** Life of the MFA session (GetSessionToken); undefined: the chain has no MFA session. */
  mfaDurationMs?: number | undefined;
  /** Account in the assumed-role ARN. */
  account?: string;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export class FakeCredentialSource implements CredentialSource {
  readonly profile: string;
  readonly region: string | undefined;
  /** AssumeRole calls made by fetchCredentials. */
  fetchCalls = 0;
  /** AssumeRole calls for the role-arn route, by ARN. */
  readonly assumeCalls = new Map<string, number>();
  /**
   * GetSessionToken calls this source has made: counted where they happen — the first upstream
   * call that needs the MFA session when the source holds none yet (as the real chain does on its
   * first fetch), and each renew. Never preset: a source nobody fetched from has made none.
   */
  getSessionTokenCalls = 0;
  readonly renewCodes: string[] = [];
  /** Errors the next fetches throw, in order. */
  readonly failures: unknown[] = [];
  /** While set, fetches wait on it (to hold an upstream call in flight). */
  private gate: Deferred<void> | undefined;
  private mfaExpiresAt: number | undefined;
  private serial = 0;

  constructor(private readonly options: FakeSourceOptions) {
    this.profile = options.profile ?? 'account-a';
    this.region = 'region' in options ? options.region : 'ap-northeast-1';
  }

  /** One GetSessionToken: a fresh MFA session of mfaDurationMs from now. */
  private getSessionToken(): void {
    this.getSessionTokenCalls++;
    this.mfaExpiresAt = this.options.clock.now() + (this.options.mfaDurationMs ?? 8 * HOUR);
  }

  /** Hold every upstream call until `release()`. */
  hold(): void {
    this.gate ??= deferred<void>();
  }

  release(): void {
    const gate = this.gate;
    this.gate = undefined;
    gate?.resolve();
  }

  failNext(...errors: unknown[]): void {
    this.failures.push(...errors);
  }

  async fetchCredentials(): Promise<TemporaryCredentials> {
    this.fetchCalls++;
    return this.mint(`arn:aws:iam::${this.options.account ?? '222222222222'}:role/account-a-assume-role`);
  }

  async assumeRole(roleArn: string): Promise<TemporaryCredentials> {
    this.assumeCalls.set(roleArn, (this.assumeCalls.get(roleArn) ?? 0) + 1);
    return this.mint(roleArn);
  }

  mfaSessionExpiration(): Date | undefined {
    return this.mfaExpiresAt === undefined ? undefined : new Date(this.mfaExpiresAt);
  }

  async renew(mfaToken: string): Promise<void> {
    if (!/^\d{6}$/.test(mfaToken)) throw new VaultError('MFA_INVALID', 'the MFA code was not accepted');
    this.renewCodes.push(mfaToken);
    this.getSessionToken();
  }

  private async mint(roleArn: string): Promise<TemporaryCredentials & { assumedRoleArn: string }> {
    if (this.gate) await this.gate.promise;
    const now = this.options.clock.now();
    // The chain gets its MFA session on the first call that needs one (with the code the CLI
    // handed over); after that it reuses it until it ends, and only renew makes another.
    if (this.options.mfaDurationMs !== undefined && this.mfaExpiresAt === undefined) this.getSessionToken();
    if (this.mfaExpiresAt !== undefined && now >= this.mfaExpiresAt) {
      throw new VaultError('SESSION_NEEDS_MFA', `the MFA session for ${this.profile} has expired`, {
        hint: 'renew it with a new MFA code',
      });
    }
    if (this.failures.length > 0) throw this.failures.shift();
    const n = ++this.serial;
    const account = /::(\d{12}):/.exec(roleArn)?.[1] ?? '222222222222';
    const name = roleArn.slice(roleArn.lastIndexOf('/') + 1);
    return {
      accessKeyId: `ASIAFAKE${String(n).padStart(12, '0')}`,
      secretAccessKey: `fake-secret-${this.profile}-${n}-${'s'.repeat(24)}`,
      sessionToken: `fake-session-token-${this.profile}-${n}-${'t'.repeat(64)}`,
      expiration: new Date(now + (this.options.roleDurationMs ?? HOUR)),
      assumedRoleArn: `arn:aws:sts::${account}:assumed-role/${name}/vault-${n}`,
    };
  }
}

/** A factory over FakeCredentialSource; remembers every source and request it saw. */
export class FakeSourceFactory implements CredentialSourceFactory {
  readonly sources: FakeCredentialSource[] = [];
  readonly requests: SessionSourceRequest[] = [];
  /** Thrown by the next create(). */
  createError: unknown;

  constructor(private readonly options: Omit<FakeSourceOptions, 'profile' | 'region'> & { region?: string | undefined }) {}

  async create(request: SessionSourceRequest): Promise<FakeCredentialSource> {
    this.requests.push(request);
    if (this.createError !== undefined) {
      const error = this.createError;
      this.createError = undefined;
      throw error;
    }
    if (request.profile === 'missing') throw new VaultError('PROFILE_NOT_FOUND', 'profile missing not found in ~/.aws/config');
    const source = new FakeCredentialSource({
      ...this.options,
      profile: request.profile,
      region: request.region ?? ('region' in this.options ? this.options.region : 'ap-northeast-1'),
      ...(request.durationSeconds ? { roleDurationMs: request.durationSeconds * 1000 } : {}),
    });
    this.sources.push(source);
    return source;
  }

  /** GetSessionToken calls made by every source this factory created. */
  get getSessionTokenCalls(): number {
    return this.sources.reduce((sum, source) => sum + source.getSessionTokenCalls, 0);
  }

  /** The source of the session most recently created. */
  get last(): FakeCredentialSource {
    const source = this.sources[this.sources.length - 1];
    if (!source) throw new Error('no source created yet');
    return source;
  }
}
