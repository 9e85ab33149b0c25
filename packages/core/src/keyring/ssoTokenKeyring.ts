import { VaultError } from '../errors.js';
import type { Keyring } from './keyring.js';

/**
 * IAM Identity Center sign-ins, one keyring item per start URL under aws-vault's key `oidc:<start
 * URL>`: one sign-in serves every account and role under that portal. Never a plain file (the AWS
 * CLI's ~/.aws/sso/cache is one). The value keeps aws-vault's shape (`Token` with CreateToken's
 * fields, `Expiration`) so the two tools can share a keyring; vault adds the client registration
 * that a refresh needs, and the region the token was issued in.
 */
export const SSO_TOKEN_PREFIX = 'oidc:';

export function ssoTokenKeyName(startUrl: string): string {
  return `${SSO_TOKEN_PREFIX}${startUrl}`;
}

export function isSsoTokenKey(key: string): boolean {
  return key.startsWith(SSO_TOKEN_PREFIX);
}

export interface SsoClientRegistration {
  clientId: string;
  clientSecret: string;
  expiresAt: Date;
}

export interface SsoToken {
  accessToken: string;
  expiresAt: Date;
  /** Given only to a registration with scopes (an [sso-session] with sso_registration_scopes). */
  refreshToken?: string;
  /** The registration the token was issued to: a refresh must present it. */
  client?: SsoClientRegistration;
  region: string;
}

interface StoredToken {
  Token: { AccessToken: string; ExpiresIn?: number; RefreshToken?: string; TokenType: string };
  Expiration: string;
  Client?: { ClientId: string; ClientSecret: string; Expiration: string };
  Region: string;
}

export class SsoTokenKeyring {
  constructor(readonly keyring: Keyring) {}

  async get(startUrl: string): Promise<SsoToken | undefined> {
    let raw: string | undefined;
    try {
      raw = await this.keyring.get(ssoTokenKeyName(startUrl));
    } catch (error) {
      // Only a cache of a sign-in: a damaged item means signing in again, not a failed command.
      if (error instanceof VaultError && error.code === 'KEYRING_CORRUPT') {
        await this.remove(startUrl);
        return undefined;
      }
      throw error;
    }
    if (raw === undefined) return undefined;
    try {
      const stored = JSON.parse(raw) as StoredToken;
      if (typeof stored.Token?.AccessToken !== 'string') throw new Error('no access token');
      return {
        accessToken: stored.Token.AccessToken,
        expiresAt: new Date(stored.Expiration),
        ...(stored.Token.RefreshToken ? { refreshToken: stored.Token.RefreshToken } : {}),
        ...(stored.Client
          ? { client: { clientId: stored.Client.ClientId, clientSecret: stored.Client.ClientSecret, expiresAt: new Date(stored.Client.Expiration) } }
          : {}),
        region: stored.Region,
      };
    } catch {
      await this.remove(startUrl);
      return undefined;
    }
  }

  async store(startUrl: string, token: SsoToken, now: number): Promise<void> {
    const stored: StoredToken = {
      Token: {
        AccessToken: token.accessToken,
        ExpiresIn: Math.max(0, Math.round((token.expiresAt.getTime() - now) / 1000)),
        ...(token.refreshToken ? { RefreshToken: token.refreshToken } : {}),
        TokenType: 'Bearer',
      },
      Expiration: token.expiresAt.toISOString(),
      ...(token.client
        ? { Client: { ClientId: token.client.clientId, ClientSecret: token.client.clientSecret, Expiration: token.client.expiresAt.toISOString() } }
        : {}),
      Region: token.region,
    };
    await this.keyring.set(ssoTokenKeyName(startUrl), JSON.stringify(stored), `aws-vault oidc token for ${startUrl}`);
  }

  /** True when a sign-in was there. */
  async remove(startUrl: string): Promise<boolean> {
    return this.keyring.remove(ssoTokenKeyName(startUrl)).catch(() => false);
  }

  /** The start URLs with a cached sign-in (names only: nothing is decrypted). */
  async startUrls(): Promise<string[]> {
    return (await this.keyring.keys()).filter(isSsoTokenKey).map((k) => k.slice(SSO_TOKEN_PREFIX.length));
  }
}
