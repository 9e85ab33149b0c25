import { describe, expect, it } from 'vitest';
import { VaultError } from '../errors.js';
import { MemoryKeyring } from './memoryKeyring.js';
import { CredentialCache, parseCacheKey, cacheKeyName } from './credentialCache.js';

const HOUR = 3_600_000;
const now = Date.parse('2026-11-22T12:00:00Z');

function session(expiresInMs: number) {
  return { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret-value', sessionToken: 'token-value', expiration: new Date(now + expiresInMs) };
}

describe('CredentialCache', () => {
  it("names keys as aws-vault does (padded base64url, expiry in Unix seconds) and parses them back", () => {
    const name = cacheKeyName('sts.GetSessionToken', 'central', 'arn:aws:iam::111111111111:mfa/alice', new Date(now + HOUR));
    expect(name).toBe(`sts.GetSessionToken,Y2VudHJhbA==,YXJuOmF3czppYW06OjExMTExMTExMTExMTptZmEvYWxpY2U=,${(now + HOUR) / 1000}`);
    expect(parseCacheKey(name)).toMatchObject({ type: 'sts.GetSessionToken', profile: 'central', discriminator: 'arn:aws:iam::111111111111:mfa/alice' });
  });

  it('returns the session with the most life left and drops expired ones', async () => {
    const keyring = new MemoryKeyring();
    const sessions = new CredentialCache(keyring);
    await sessions.store('sts.AssumeRole', 'a', 'd', session(-1));
    await sessions.store('sts.AssumeRole', 'a', 'd', session(HOUR));
    await sessions.store('sts.AssumeRole', 'a', 'd', session(2 * HOUR));
    const found = await sessions.find('sts.AssumeRole', 'a', 'd', now, 15 * 60_000);
    expect(found?.expiration.getTime()).toBe(now + 2 * HOUR);
    expect((await sessions.list()).map((k) => k.expiration.getTime()).sort()).toEqual([now + HOUR, now + 2 * HOUR]);
  });

  it('treats a damaged cache item as a miss and removes it, instead of failing the command', async () => {
    const inner = new MemoryKeyring();
    const sessions = new CredentialCache({
      backend: 'damaged',
      get: async () => { throw new VaultError('KEYRING_CORRUPT', 'the item is damaged'); },
      set: (k, v) => inner.set(k, v),
      remove: (k) => inner.remove(k),
      keys: () => inner.keys(),
    });
    await sessions.store('sts.GetSessionToken', 'central', 'serial', session(HOUR));
    expect(await sessions.find('sts.GetSessionToken', 'central', 'serial', now, 0)).toBeUndefined();
    expect(await inner.keys()).toEqual([]);
  });

  it('does not hide a wrong passphrase or an unreachable keyring', async () => {
    const inner = new MemoryKeyring();
    const sessions = new CredentialCache({
      backend: 'locked',
      get: async () => { throw new VaultError('KEYRING_BAD_PASSPHRASE', 'wrong passphrase'); },
      set: (k, v) => inner.set(k, v),
      remove: (k) => inner.remove(k),
      keys: () => inner.keys(),
    });
    await sessions.store('sts.GetSessionToken', 'central', 'serial', session(HOUR));
    await expect(sessions.find('sts.GetSessionToken', 'central', 'serial', now, 0)).rejects.toMatchObject({ code: 'KEYRING_BAD_PASSPHRASE' });
    expect(await inner.keys()).toHaveLength(1);
  });
});
