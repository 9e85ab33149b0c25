import type { Credentials } from '../credentials.js';
import { VaultError } from '../errors.js';
import type { Keyring } from './keyring.js';
import { isCacheKey } from './credentialCache.js';
import { isSsoTokenKey } from './ssoTokenKeyring.js';

/**
 * Long-term IAM user keys, one item per profile, stored in aws-vault's JSON shape so a keyring
 * (or key file) written by aws-vault is read as is, and the other way round.
 */
interface StoredKey {
  AccessKeyID: string;
  SecretAccessKey: string;
  SessionToken?: string;
  Source?: string;
  CanExpire?: boolean;
  Expires?: string;
}

export class CredentialKeyring {
  constructor(readonly keyring: Keyring) {}

  async get(profile: string): Promise<Credentials | undefined> {
    const raw = await this.keyring.get(profile);
    if (raw === undefined) return undefined;
    let stored: StoredKey;
    try {
      stored = JSON.parse(raw) as StoredKey;
    } catch (cause) {
      throw new VaultError('KEYRING_CORRUPT', `the stored key for profile ${profile} is not valid JSON`, {
        hint: `store it again with \`vault add ${profile}\``,
        cause,
      });
    }
    if (typeof stored.AccessKeyID !== 'string' || typeof stored.SecretAccessKey !== 'string') {
      throw new VaultError('KEYRING_CORRUPT', `the stored key for profile ${profile} has no access key id or secret`, {
        hint: `store it again with \`vault add ${profile}\``,
      });
    }
    return {
      accessKeyId: stored.AccessKeyID,
      secretAccessKey: stored.SecretAccessKey,
      sessionToken: stored.SessionToken || undefined,
    };
  }

  async has(profile: string): Promise<boolean> {
    return (await this.profiles()).includes(profile);
  }

  async set(profile: string, credentials: Credentials): Promise<void> {
    const stored: StoredKey = {
      AccessKeyID: credentials.accessKeyId,
      SecretAccessKey: credentials.secretAccessKey,
      SessionToken: credentials.sessionToken ?? '',
      Source: '',
      CanExpire: false,
      Expires: '0001-01-01T00:00:00Z',
    };
    await this.keyring.set(profile, JSON.stringify(stored), `aws-vault (${profile})`);
  }

  async remove(profile: string): Promise<boolean> {
    return this.keyring.remove(profile);
  }

  /** Profiles that have a stored key (everything in the keyring that is not cached credentials or a sign-in). */
  async profiles(): Promise<string[]> {
    return (await this.keyring.keys()).filter((key) => !isCacheKey(key) && !isSsoTokenKey(key));
  }
}
