import type { AssumedRoleCredentials, TemporaryCredentials } from '../credentials.js';
import type { Keyring } from './keyring.js';
import { VaultError } from '../errors.js';

/**
 * Cached STS sessions live in the keyring (encrypted), never in a plain file. Keys follow
 * aws-vault's `TYPE,base64url(profile),base64url(discriminator),expiryUnixSeconds`; for
 * GetSessionToken the discriminator is the MFA serial, exactly as aws-vault writes it, so the two
 * tools can share a keyring. For AssumeRole it is a fingerprint of everything that shapes the result.
 */
export type SessionType = 'sts.GetSessionToken' | 'sts.AssumeRole';

export interface SessionKey {
  type: SessionType;
  profile: string;
  discriminator: string;
  expiration: Date;
  key: string;
}

const SESSION_KEY = /^(sts\.GetSessionToken|sts\.AssumeRole),([A-Za-z0-9_=-]*),([A-Za-z0-9_=-]*),(\d+)$/;

export function isSessionKey(key: string): boolean {
  return /^sts\.[A-Za-z]+,/.test(key);
}

function encode(text: string): string {
  // base64.URLEncoding in Go keeps the `=` padding; match it so aws-vault recognises the key.
  const unpadded = Buffer.from(text, 'utf8').toString('base64url');
  return unpadded + '='.repeat((4 - (unpadded.length % 4)) % 4);
}

export function sessionKeyName(type: SessionType, profile: string, discriminator: string, expiration: Date): string {
  return `${type},${encode(profile)},${encode(discriminator)},${Math.floor(expiration.getTime() / 1000)}`;
}

export function parseSessionKey(key: string): SessionKey | undefined {
  const match = SESSION_KEY.exec(key);
  if (!match) return undefined;
  const [, type, profile, discriminator, expiry] = match;
  return {
    type: type as SessionType,
    profile: Buffer.from(profile!, 'base64url').toString('utf8'),
    discriminator: Buffer.from(discriminator!, 'base64url').toString('utf8'),
    expiration: new Date(Number(expiry) * 1000),
    key,
  };
}

interface StoredSession {
  AccessKeyId: string;
  SecretAccessKey: string;
  SessionToken: string;
  Expiration: string;
  AssumedRoleArn?: string;
}

export class SessionKeyring {
  constructor(readonly keyring: Keyring) {}

  async list(): Promise<SessionKey[]> {
    return (await this.keyring.keys()).map(parseSessionKey).filter((k): k is SessionKey => k !== undefined);
  }

  /**
   * The cached session with the most life left, if it has more than `minTtlMs` at `now`.
   * Sessions that have expired are removed on the way, so the keyring does not grow.
   */
  async find(type: SessionType, profile: string, discriminator: string, now: number, minTtlMs: number): Promise<AssumedRoleCredentials | undefined> {
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
      const stored = JSON.parse(raw) as StoredSession;
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

  async store(type: SessionType, profile: string, discriminator: string, credentials: TemporaryCredentials & { assumedRoleArn?: string }): Promise<void> {
    const stored: StoredSession = {
      AccessKeyId: credentials.accessKeyId,
      SecretAccessKey: credentials.secretAccessKey,
      SessionToken: credentials.sessionToken,
      Expiration: credentials.expiration.toISOString(),
      ...(credentials.assumedRoleArn ? { AssumedRoleArn: credentials.assumedRoleArn } : {}),
    };
    await this.keyring.set(sessionKeyName(type, profile, discriminator, credentials.expiration), JSON.stringify(stored), `aws-vault session for ${profile}`);
  }

  /** Removes one cached session (STS has rejected it); true when it was there. */
  async forget(type: SessionType, profile: string, discriminator: string, expiration: Date): Promise<boolean> {
    return this.keyring.remove(sessionKeyName(type, profile, discriminator, expiration));
  }

  /** Removes cached sessions; all of them, or only those of the given profiles. Returns how many. */
  async clear(profiles?: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const key of await this.list()) {
      if (profiles && !profiles.has(key.profile)) continue;
      if (await this.keyring.remove(key.key)) removed += 1;
    }
    return removed;
  }
}

/**
 * The credential daemon's restorable sessions: one keyring item per daemon (state directory),
 * written by the daemon (see @vault/server's sessionStore). The name follows the session key
 * pattern above, so `vault list` and aws-vault treat the item as a cached session rather than as a
 * profile's key, while `SessionKeyring` (which reads only the two STS types) and `vault clear`
 * leave it alone. The discriminator is the daemon's scope (its state directory, hashed); the
 * expiry field is a far-future constant: the item lives until the daemon's sessions are stopped.
 */
export const DAEMON_SESSIONS_TYPE = 'sts.VaultDaemonSessions';
/** The profile field of the name (aws-vault's pattern wants one): no profile owns the item. */
const DAEMON_SESSIONS_OWNER = 'vault-daemon';
/** 9999-12-31T23:59:59Z: aws-vault removes session items past their expiry field. */
const DAEMON_SESSIONS_EXPIRY = 253_402_300_799;

const DAEMON_SESSIONS_KEY = /^sts\.VaultDaemonSessions,([A-Za-z0-9_=-]+),([A-Za-z0-9_=-]+),(\d+)$/;

export function daemonSessionsKeyName(scope: string): string {
  return `${DAEMON_SESSIONS_TYPE},${encode(DAEMON_SESSIONS_OWNER)},${encode(scope)},${DAEMON_SESSIONS_EXPIRY}`;
}

/** The scope of a daemon sessions item, or undefined for any other key. */
export function parseDaemonSessionsKey(key: string): { scope: string; key: string } | undefined {
  const match = DAEMON_SESSIONS_KEY.exec(key);
  if (!match) return undefined;
  const scope = Buffer.from(match[2]!, 'base64url').toString('utf8');
  return scope === '' ? undefined : { scope, key };
}
