import type { TemporaryCredentials } from '@vault/core';
import type { CredentialSource, CredentialSourceFactory, SessionSourceRequest } from '../credentialSource.js';
import { isOwnerAlive } from './orphanReaping.js';
import type { SessionOwnerInfo } from './session.js';
import type { SessionRecord, SessionStore } from './sessionStore.js';

/**
 * The source of a restored session. The daemon brings a session back before it knows whether its
 * profile still resolves (the config may have changed, the keyring may be locked): the real source
 * is created on first use and again after a failure, so a restored session always exists — with
 * the id and token its clients hold — and its state says what is wrong rather than vanishing.
 * Until the real source exists, the profile, region and MFA expiry come from the record.
 */
export class RestoredSource implements CredentialSource {
  private inner: CredentialSource | undefined;
  private creating: Promise<CredentialSource> | undefined;

  constructor(
    private readonly factory: CredentialSourceFactory,
    private readonly sourceRequest: SessionSourceRequest,
    private readonly record: Pick<SessionRecord, 'profile' | 'region' | 'mfaExpiration'>,
  ) {}

  get profile(): string {
    return this.record.profile;
  }

  get region(): string | undefined {
    return this.inner ? this.inner.region : this.record.region;
  }

  /** The real source, created once (a failed creation is tried again on the next call). */
  source(): Promise<CredentialSource> {
    if (this.inner) return Promise.resolve(this.inner);
    this.creating ??= this.factory.create(this.sourceRequest).then(
      (source) => {
        this.inner = source;
        this.creating = undefined;
        return source;
      },
      (error: unknown) => {
        this.creating = undefined;
        throw error;
      },
    );
    return this.creating;
  }

  async fetchCredentials(): Promise<TemporaryCredentials> {
    return (await this.source()).fetchCredentials();
  }

  async assumeRole(roleArn: string): Promise<TemporaryCredentials> {
    return (await this.source()).assumeRole(roleArn);
  }

  mfaSessionExpiration(): Date | undefined {
    const known = this.inner?.mfaSessionExpiration();
    if (known) return known;
    return this.record.mfaExpiration === undefined ? undefined : new Date(this.record.mfaExpiration);
  }

  async renew(mfaToken: string): Promise<void> {
    await (await this.source()).renew(mfaToken);
  }

  async mfaSessionUsable(): Promise<boolean | undefined> {
    const source = await this.source();
    return source.mfaSessionUsable ? source.mfaSessionUsable() : undefined;
  }

  async ssoSignInUsable(): Promise<boolean | undefined> {
    const source = await this.source();
    return source.ssoSignInUsable ? source.ssoSignInUsable() : undefined;
  }
}

export interface LoadedForRestore {
  records: SessionRecord[];
  /** Sessions forgotten because the `vault exec --server` that owned them is gone. */
  dropped: SessionRecord[];
  skipped: Array<{ id: string; reason: string }>;
}

/**
 * The records a starting daemon restores: everything in the store for its state directory, minus
 * the sessions of `vault exec --server` processes that have ended meanwhile (their child is gone
 * with them). The daemon's next write of its set leaves those out of the store.
 */
export async function loadForRestore(store: SessionStore, ownerAlive: (owner: SessionOwnerInfo) => boolean = isOwnerAlive): Promise<LoadedForRestore> {
  const { records, skipped } = await store.load();
  const result: LoadedForRestore = { records: [], dropped: [], skipped };
  for (const record of records) {
    if (record.owner && !ownerAlive(record.owner)) {
      result.dropped.push(record);
    } else {
      result.records.push(record);
    }
  }
  return result;
}

/** The credential port the restored container sessions were using (their URIs name it). */
export function credentialPortOf(records: readonly SessionRecord[]): number | undefined {
  const counts = new Map<number, number>();
  for (const r of records) if (r.kind === 'ecs') counts.set(r.port, (counts.get(r.port) ?? 0) + 1);
  let best: number | undefined;
  for (const [port, count] of counts) if (best === undefined || count > counts.get(best)!) best = port;
  return best;
}
