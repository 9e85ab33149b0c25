import { describe, expect, it } from 'vitest';
import { MemoryKeyring } from '@vault/core';
import { withMovedRecords } from './movedSessionStore.js';
import { KeyringSessionStore, type SessionRecord } from './sessionStore.js';

const base = { version: 1, token: 'a'.repeat(43), profile: 'p', kind: 'ecs', lazy: false, port: 20_000 } as const;
const record = (id: string, createdAt: number): SessionRecord => ({ ...base, id, createdAt });

function stores() {
  const keyring = new MemoryKeyring();
  const moved = new KeyringSessionStore(async () => keyring, '/run/user/1000/vault');
  const old = new KeyringSessionStore(async () => keyring, '/home/u/.vault/daemon');
  return { keyring, moved, old, store: withMovedRecords(moved, old) };
}

describe('withMovedRecords: the sessions a daemon left in the old state directory', () => {
  it('are loaded with the new place\'s own, written under the new name, and removed from the old one', async () => {
    const { moved, old, store } = stores();
    await old.save([record('aaaaaaaaaaaa', 1), record('cccccccccccc', 3)]);
    await moved.save([record('bbbbbbbbbbbb', 2)]);
    const loaded = await store.load();
    expect(loaded.records.map((r) => r.id)).toEqual(['aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'cccccccccccc']);
    expect((await moved.load()).records.map((r) => r.id)).toEqual(['aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'cccccccccccc']);
    expect((await old.load()).records).toEqual([]);
  });

  it('are picked up once: a later load does not read the old place again', async () => {
    const { old, store } = stores();
    await old.save([record('aaaaaaaaaaaa', 1)]);
    await store.load();
    // Something writes the old place afterwards (a daemon of the previous version started there).
    await old.save([record('dddddddddddd', 4)]);
    expect((await store.load()).records.map((r) => r.id)).toEqual(['aaaaaaaaaaaa']);
    expect((await old.load()).records.map((r) => r.id)).toEqual(['dddddddddddd']);
  });

  it('keep the new place\'s record when both hold the same session (a move interrupted after its first write)', async () => {
    const { moved, old, store } = stores();
    await old.save([{ ...record('aaaaaaaaaaaa', 1), port: 20_001 }]);
    await moved.save([{ ...record('aaaaaaaaaaaa', 1), port: 20_002 }]);
    expect((await store.load()).records).toEqual([{ ...record('aaaaaaaaaaaa', 1), port: 20_002 }]);
    expect((await old.load()).records).toEqual([]);
  });

  it('stay in the old place when the new one cannot be written: nothing is lost', async () => {
    const { old, moved } = stores();
    await old.save([record('aaaaaaaaaaaa', 1)]);
    const refusing = { load: () => moved.load(), save: async () => Promise.reject(new Error('keyring write refused')), clear: () => moved.clear() };
    await expect(withMovedRecords(refusing, old).load()).rejects.toThrow('keyring write refused');
    expect((await old.load()).records.map((r) => r.id)).toEqual(['aaaaaaaaaaaa']);
  });

  it('are forgotten with the new place\'s by clear (`vault server stop` after a crash)', async () => {
    const { moved, old, store } = stores();
    await old.save([record('aaaaaaaaaaaa', 1)]);
    await moved.save([record('bbbbbbbbbbbb', 2)]);
    expect(await store.clear()).toBe(true);
    expect((await old.load()).records).toEqual([]);
    expect((await moved.load()).records).toEqual([]);
  });
});
