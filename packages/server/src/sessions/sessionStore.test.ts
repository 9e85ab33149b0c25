import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialKeyring, FileKeyring, MemoryKeyring, SessionKeyring, VaultError, isSessionKey, parseDaemonSessionKey, parseSessionKey, type Keyring } from '@vault/core';
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
  it('writes one keyring item per session and reads it back', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => keyring, '/state/a');
    const a = record();
    const b = record({ id: 'ba9876543210', kind: 'imds', port: 20_456, owner: { pid: 42, startTime: '123' }, mfaExpiration: 1_700_028_800_000 });
    await store.save(a);
    await store.save(b);
    expect(await keyring.keys()).toHaveLength(2);
    const { records, skipped } = await store.load();
    expect(skipped).toEqual([]);
    expect(records).toEqual([a, b]);
    // Saving again replaces the item.
    await store.save({ ...a, port: 20_999 });
    expect((await store.load()).records.find((r) => r.id === a.id)!.port).toBe(20_999);
    expect(await keyring.keys()).toHaveLength(2);
  });

  it('names items like cached sessions: not a profile for `vault list`, not a session for `vault clear`', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => keyring, '/state/a');
    await store.save(record());
    const [key] = await keyring.keys();
    expect(key).toMatch(/^sts\.VaultDaemonSession,[A-Za-z0-9_=-]+,[A-Za-z0-9_=-]+,253402300799$/);
    // aws-vault's session key pattern, so aws-vault does not take it for a stored key either.
    expect(key).toMatch(/^[^,]+,[^,]+,[^,]*,[0-9]{1,}$/);
    expect(isSessionKey(key!)).toBe(true);
    expect(parseSessionKey(key!)).toBeUndefined();
    expect(parseDaemonSessionKey(key!)).toMatchObject({ profile: 'account-a', scope: storeScope('/state/a'), id: '0123456789ab' });
    expect(await new CredentialKeyring(keyring).profiles()).toEqual([]);
    expect(await new SessionKeyring(keyring).clear()).toBe(0);
    expect(await keyring.keys()).toHaveLength(1);
  });

  it('keeps daemons with different state directories apart in one keyring', async () => {
    const keyring = new MemoryKeyring();
    const a = new KeyringSessionStore(async () => keyring, '/state/a');
    const b = new KeyringSessionStore(async () => keyring, '/state/b');
    await a.save(record());
    await b.save(record({ id: 'bbbbbbbbbbbb' }));
    expect((await a.load()).records.map((r) => r.id)).toEqual(['0123456789ab']);
    expect((await b.load()).records.map((r) => r.id)).toEqual(['bbbbbbbbbbbb']);
    expect(await a.removeAll()).toBe(1);
    expect((await b.load()).records).toHaveLength(1);
  });

  it('removes one record by id', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => keyring, '/state/a');
    await store.save(record());
    await store.save(record({ id: 'bbbbbbbbbbbb' }));
    expect(await store.remove('0123456789ab')).toBe(true);
    expect(await store.remove('0123456789ab')).toBe(false);
    expect((await store.load()).records.map((r) => r.id)).toEqual(['bbbbbbbbbbbb']);
  });

  it('skips and removes a damaged record, saying why without quoting it', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => keyring, '/state/a');
    const good = record();
    await store.save(good);
    const bad = record({ id: 'bad000000000' });
    await store.save(bad);
    const badKey = (await keyring.keys()).find((k) => parseDaemonSessionKey(k)!.id === 'bad000000000')!;
    await keyring.set(badKey, JSON.stringify({ ...bad, token: `${bad.token}\r\nX-Injected: 1` }));
    const renamed = record({ id: 'cccccccccccc' });
    await store.save(renamed);
    const renamedKey = (await keyring.keys()).find((k) => parseDaemonSessionKey(k)!.id === 'cccccccccccc')!;
    await keyring.set(renamedKey, JSON.stringify({ ...renamed, id: '0123456789ab' }));
    const { records, skipped } = await store.load();
    expect(records.map((r) => r.id)).toEqual([good.id]);
    expect(skipped).toEqual([
      { id: 'bad000000000', reason: 'malformed record (bad token); removed' },
      { id: 'cccccccccccc', reason: 'record names another session; removed' },
    ]);
    expect(JSON.stringify(skipped)).not.toContain(bad.token);
    expect(await keyring.keys()).toHaveLength(1);
  });

  it('skips an item it cannot read (and keeps it for a start that can)', async () => {
    const inner = new MemoryKeyring();
    const store = new KeyringSessionStore(async () => inner, '/state/a');
    await store.save(record());
    const locked: Keyring = {
      backend: 'memory',
      keys: () => inner.keys(),
      get: async () => {
        throw new VaultError('KEYRING_LOCKED', 'the keychain is locked');
      },
      set: (k, v) => inner.set(k, v),
      remove: (k) => inner.remove(k),
    };
    const { records, skipped } = await new KeyringSessionStore(async () => locked, '/state/a').load();
    expect(records).toEqual([]);
    expect(skipped).toEqual([{ id: '0123456789ab', reason: 'could not be read: the keychain is locked' }]);
    expect(await inner.keys()).toHaveLength(1);
  });

  it('with the file backend the record is a JWE file (0600): neither the token nor the credentials are on disk in plain text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vault-store-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const keyring = new FileKeyring({ dir: join(dir, 'keys'), passphrase: async () => 'store-test-passphrase', pbes2Count: 10_000 });
    const store = new KeyringSessionStore(async () => keyring, join(dir, 'state'));
    const r = record();
    await store.save(r);
    const files = readdirSync(join(dir, 'keys'));
    expect(files).toHaveLength(1);
    const text = readFileSync(join(dir, 'keys', files[0]!), 'utf8');
    expect(text).toMatch(/^[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+$/);
    for (const secret of [r.token, r.credentials!.secretAccessKey, r.credentials!.sessionToken]) expect(text).not.toContain(secret);
    expect((await store.load()).records).toEqual([r]);
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
