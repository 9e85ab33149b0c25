import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialKeyring, FileKeyring, MemoryKeyring, CredentialCache, VaultError, isCacheKey, parseDaemonSessionsKey, parseCacheKey, type Keyring } from '@vault/core';
import { newSessionToken } from './session.js';
import { KeyringSessionStore, storeScope, validateRecord, type SessionRecord } from './sessionStore.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

function record(over: Partial<SessionRecord> = {}): SessionRecord {
  return {
    version: 1,
    id: '0123456789ab',
    token: newSessionToken(),
    profile: 'account-a',
    kind: 'ecs',
    lazy: false,
    createdAt: 1_700_000_000_000,
    port: 20_123,
    region: 'ap-northeast-1',
    credentials: {
      accessKeyId: 'ASIAFAKE000000000001',
      secretAccessKey: 'fake-secret-value-that-is-long-enough',
      sessionToken: 'fake-session-token-value-that-is-long',
      expiration: 1_700_003_600_000,
      fetchedAt: 1_700_000_000_000,
    },
    ...over,
  };
}

describe('KeyringSessionStore', () => {
  it('keeps the whole set in one keyring item, replaced on each write and removed when empty', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => keyring, '/state/a');
    const a = record();
    const b = record({ id: 'ba9876543210', kind: 'imds', port: 20_456, owner: { pid: 42, startTime: '123' }, mfaExpiration: 1_700_028_800_000, createdAt: 1_700_000_001_000 });
    await store.save([a, b]);
    expect(await keyring.keys()).toHaveLength(1);
    expect(await store.load()).toEqual({ records: [a, b], skipped: [] });
    await store.save([{ ...a, port: 20_999 }]);
    expect((await store.load()).records).toEqual([{ ...a, port: 20_999 }]);
    await store.save([]);
    expect(await keyring.keys()).toEqual([]);
    expect(await store.load()).toEqual({ records: [], skipped: [] });
  });

  it('names the item like cached credentials: not a profile for `vault list`, not a session for `vault clear`', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => keyring, '/state/a');
    await store.save([record()]);
    const [key] = await keyring.keys();
    expect(key).toBe(store.key);
    expect(key).toMatch(/^sts\.VaultDaemonSessions,[A-Za-z0-9_=-]+,[A-Za-z0-9_=-]+,253402300799$/);
    // aws-vault's session key pattern, so aws-vault does not take it for a stored key either.
    expect(key).toMatch(/^[^,]+,[^,]+,[^,]*,[0-9]{1,}$/);
    expect(isCacheKey(key!)).toBe(true);
    expect(parseCacheKey(key!)).toBeUndefined();
    expect(parseDaemonSessionsKey(key!)).toEqual({ scope: storeScope('/state/a'), key });
    expect(parseDaemonSessionsKey('sts.GetSessionToken,YQ==,,1')).toBeUndefined();
    expect(await new CredentialKeyring(keyring).profiles()).toEqual([]);
    expect(await new CredentialCache(keyring).clear()).toBe(0);
    expect(await keyring.keys()).toHaveLength(1);
  });

  it('keeps daemons with different state directories apart in one keyring', async () => {
    const keyring = new MemoryKeyring();
    const a = new KeyringSessionStore(async () => keyring, '/state/a');
    const b = new KeyringSessionStore(async () => keyring, '/state/b');
    await a.save([record()]);
    await b.save([record({ id: 'bbbbbbbbbbbb' })]);
    expect((await a.load()).records.map((r) => r.id)).toEqual(['0123456789ab']);
    expect((await b.load()).records.map((r) => r.id)).toEqual(['bbbbbbbbbbbb']);
    expect(await a.clear()).toBe(true);
    expect(await a.clear()).toBe(false);
    expect((await b.load()).records).toHaveLength(1);
  });

  it('skips a damaged record, saying why without quoting it, and keeps the others', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => keyring, '/state/a');
    const good = record();
    const bad = record({ id: 'bad000000000' });
    await keyring.set(store.key, JSON.stringify({ version: 1, sessions: [good, { ...bad, token: `${bad.token}\r\nX-Injected: 1` }, { ...good }, 'junk'] }));
    const { records, skipped } = await store.load();
    expect(records).toEqual([good]);
    expect(skipped).toEqual([
      { id: 'bad000000000', reason: 'malformed record (bad token)' },
      { id: good.id, reason: 'a second record with the same id' },
      { id: '?', reason: 'malformed record (not an object)' },
    ]);
    expect(JSON.stringify(skipped)).not.toContain(bad.token);
  });

  it('removes an item that is not a session set at all', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => keyring, '/state/a');
    await keyring.set(store.key, '{"version":2}');
    expect(await store.load()).toEqual({ records: [], skipped: [{ id: '*', reason: 'the stored sessions are malformed; removed' }] });
    expect(await keyring.keys()).toEqual([]);
  });

  it('an item it cannot read is an error (the daemon keeps it for a start that can)', async () => {
    const inner = new MemoryKeyring();
    await new KeyringSessionStore(async () => inner, '/state/a').save([record()]);
    const locked: Keyring = {
      backend: 'memory',
      keys: () => inner.keys(),
      get: async () => {
        throw new VaultError('KEYRING_LOCKED', 'the keychain is locked');
      },
      set: (k, v) => inner.set(k, v),
      remove: (k) => inner.remove(k),
    };
    await expect(new KeyringSessionStore(async () => locked, '/state/a').load()).rejects.toMatchObject({ code: 'KEYRING_LOCKED' });
    expect(await inner.keys()).toHaveLength(1);
  });

  it('with the file backend the set is one JWE file (0600): neither tokens nor credentials are on disk in plain text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vault-store-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const keyring = new FileKeyring({ dir: join(dir, 'keys'), passphrase: async () => 'store-test-passphrase', pbes2Count: 10_000 });
    const store = new KeyringSessionStore(async () => keyring, join(dir, 'state'));
    const r = record();
    const other = record({ id: 'bbbbbbbbbbbb', createdAt: r.createdAt + 1 });
    await store.save([r, other]);
    const files = readdirSync(join(dir, 'keys'));
    expect(files).toHaveLength(1);
    expect(statSync(join(dir, 'keys', files[0]!)).mode & 0o777).toBe(0o600);
    const text = readFileSync(join(dir, 'keys', files[0]!), 'utf8');
    expect(text).toMatch(/^[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+$/);
    for (const secret of [r.token, other.token, r.credentials!.secretAccessKey, r.credentials!.sessionToken]) expect(text).not.toContain(secret);
    expect((await store.load()).records).toEqual([r, other]);
  });
});

describe('validateRecord', () => {
  it.each([
    ['version', { version: 2 }, 'unknown record version 2'],
    ['id', { id: '../x' }, 'bad session id'],
    ['token with CR/LF', { token: 'a'.repeat(20) + '\n' }, 'bad token'],
    ['short token', { token: 'abc' }, 'bad token'],
    ['kind', { kind: 'ec2' }, 'bad kind'],
    ['port', { port: 70_000 }, 'bad port'],
    ['port zero', { port: 0 }, 'bad port'],
    ['duration', { durationSeconds: 60 }, 'bad duration'],
    ['region', { region: 'us east' }, 'bad region'],
    ['owner', { owner: { pid: -1 } }, 'bad owner'],
    ['credentials', { credentials: { accessKeyId: 'A' } }, 'bad credentials'],
  ])('refuses a bad %s', (_name, change, reason) => {
    expect(validateRecord({ ...record(), ...change })).toEqual({ reason });
  });

  it('accepts a record without credentials (lazy, or nothing fetched yet)', () => {
    const { credentials: _, ...rest } = record();
    expect(validateRecord(rest)).toEqual({ record: rest });
  });
});
