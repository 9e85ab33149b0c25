import type { AssumedRoleCredentials, TemporaryCredentials } from '../credentials.js';
import type { Keyring } from './keyring.js';
import { VaultError } from '../errors.js';
import { encodeKeyField } from './cacheKeyFields.js';

/**
 * Cached credentials (STS results: MFA credentials from GetSessionToken, role credentials from
 * AssumeRole; aws-vault's "sessions") live in the keyring (encrypted), never in a plain file. Keys follow
 * aws-vault's `TYPE,base64url(profile),base64url(discriminator),expiryUnixSeconds`; for
 * GetSessionToken the discriminator is the MFA serial, exactly as aws-vault writes it, so the two
 * tools can share a keyring. For AssumeRole it is a fingerprint of everything that shapes the result.
 */
/** `sso.GetRoleCredentials`: IAM Identity Center role credentials, as aws-vault names them. */
export type CachedCredentialsType = 'sts.GetSessionToken' | 'sts.AssumeRole' | 'sso.GetRoleCredentials';

export interface CacheKey {
  type: CachedCredentialsType;
  profile: string;
  discriminator: string;
  expiration: Date;
  key: string;
}

const CACHE_KEY = /^(sts\.GetSessionToken|sts\.AssumeRole|sso\.GetRoleCredentials),([A-Za-z0-9_=-]*),([A-Za-z0-9_=-]*),(\d+)$/;

export function isCacheKey(key: string): boolean {
  return /^(sts|sso)\.[A-Za-z]+,/.test(key);
}


export function cacheKeyName(type: CachedCredentialsType, profile: string, discriminator: string, expiration: Date): string {
  return `${type},${encodeKeyField(profile)},${encodeKeyField(discriminator)},${Math.floor(expiration.getTime() / 1000)}`;
}

export function parseCacheKey(key: string): CacheKey | undefined {
  const match = CACHE_KEY.exec(key);
  if (!match) return undefined;
  const [, type, profile, discriminator, expiry] = match;
  return {
    type: type as CachedCredentialsType,
    profile: Buffer.from(profile!, 'base64url').toString('utf8'),
    discriminator: Buffer.from(discriminator!, 'base64url').toString('utf8'),
    expiration: new Date(Number(expiry) * 1000),
    key,
  };
}

interface CachedItem {
  AccessKeyId: string;
  SecretAccessKey: string;
  SessionToken: string;
  Expiration: string;
  AssumedRoleArn?: string;
}

export class CredentialCache {
  constructor(readonly keyring: Keyring) {}

  async list(): Promise<CacheKey[]> {
    return (await this.keyring.keys()).map(parseCacheKey).filter((k): k is CacheKey => k !== undefined);
  }

  /**
   * The cached credentials with the most life left, if they have more than `minTtlMs` at `now`.
   * Items that have expired are removed on the way, so the keyring does not grow.
   */
  async find(type: CachedCredentialsType, profile: string, discriminator: string, now: number, minTtlMs: number): Promise<AssumedRoleCredentials | undefined> {
    const matching = (await this.list()).filter((k) => k.type === type && k.profile === profile && k.discriminator === discriminator);
    for (const stale of matching.filter((k) => k.expiration.getTime() <= now)) {
      await this.keyring.remove(stale.key).catch(() => false);
    }
    const best = matching
      .filter((k) => k.expiration.getTime() - now > minTtlMs)
      .sort((a, b) => b.expiration.getTime() - a.expiration.getTime())[0];
    if (!best) return undefined;
    let raw: string | undefined;
    try {
      raw = await this.keyring.get(best.key);
    } catch (error) {
      // A tampered or truncated cache item cannot be read, but it is only a cache: drop it and call STS.
      if (error instanceof VaultError && error.code === 'KEYRING_CORRUPT') {
        await this.keyring.remove(best.key).catch(() => false);
        return undefined;
      }
      throw error;
    }
    if (raw === undefined) return undefined;
    try {
      const stored = JSON.parse(raw) as CachedItem;
      return {
        accessKeyId: stored.AccessKeyId,
        secretAccessKey: stored.SecretAccessKey,
        sessionToken: stored.SessionToken,
        expiration: new Date(stored.Expiration),
        assumedRoleArn: stored.AssumedRoleArn,
      };
    } catch {
      // A damaged cache entry is only a cache miss: drop it and let the caller call STS.
      await this.keyring.remove(best.key).catch(() => false);
      return undefined;
    }
  }

  async store(type: CachedCredentialsType, profile: string, discriminator: string, credentials: TemporaryCredentials & { assumedRoleArn?: string }): Promise<void> {
    const stored: CachedItem = {
      AccessKeyId: credentials.accessKeyId,
      SecretAccessKey: credentials.secretAccessKey,
      SessionToken: credentials.sessionToken,
      Expiration: credentials.expiration.toISOString(),
      ...(credentials.assumedRoleArn ? { AssumedRoleArn: credentials.assumedRoleArn } : {}),
    };
    await this.keyring.set(cacheKeyName(type, profile, discriminator, credentials.expiration), JSON.stringify(stored), `aws-vault session for ${profile}`);
  }

  /** Removes one cached item (STS has rejected it); true when it was there. */
  async forget(type: CachedCredentialsType, profile: string, discriminator: string, expiration: Date): Promise<boolean> {
    return this.keyring.remove(cacheKeyName(type, profile, discriminator, expiration));
  }

  /** Removes cached credentials; all of them, or only those of the given profiles. Returns how many. */
  async clear(profiles?: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const key of await this.list()) {
      if (profiles && !profiles.has(key.profile)) continue;
      if (await this.keyring.remove(key.key)) removed += 1;
    }
    return removed;
  }
}
