import { encodeKeyField } from './cacheKeyFields.js';

/**
 * The credential daemon's restorable sessions: one keyring item per daemon (state directory),
 * written by the daemon (see @vault/server's sessionStore). The name follows the session key
 * pattern of cached credentials (credentialCache.ts), so `vault list` and aws-vault treat the item as
 * cached credentials rather than as a profile's key, while `CredentialCache` (which reads only the two STS types) and `vault clear`
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
  return `${DAEMON_SESSIONS_TYPE},${encodeKeyField(DAEMON_SESSIONS_OWNER)},${encodeKeyField(scope)},${DAEMON_SESSIONS_EXPIRY}`;
}

/** The scope of a daemon sessions item, or undefined for any other key. */
export function parseDaemonSessionsKey(key: string): { scope: string; key: string } | undefined {
  const match = DAEMON_SESSIONS_KEY.exec(key);
  if (!match) return undefined;
  const scope = Buffer.from(match[2]!, 'base64url').toString('utf8');
  return scope === '' ? undefined : { scope, key };
}
