import { describe, expect, it } from 'vitest';
import { MemoryKeyring } from '@vault/core';
import { withMovedRecords } from './movedSessionStore.js';
import { KeyringSessionStore, type SessionRecord } from './sessionStore.js';

const base = { version: 1, token: 'a'.repeat(43), profile: 'p', kind: 'ecs', lazy: false, port: 20_000 } as const;
const record = (id: string, createdAt: number): SessionRecord => ({ ...base, id, createdAt });
const ids = async (store: { load(): Promise<{ records: SessionRecord[] }> }) => (await store.load()).records.map((r) => r.id);

function stores() {
  const keyring = new MemoryKeyring();
  const moved = new KeyringSessionStore(async () => keyring, '/run/user/1000/vault');
  const old = new KeyringSessionStore(async () => keyring, '/home/u/.vault/daemon');
  return { moved, old, store: withMovedRecords(moved, old) };
}

describe('withMovedRecords: the sessions a daemon left in the old state directory', () => {
  it("are loaded with the new place's own, and stay in the old place until the daemon's first save", async () => {
    const { moved, old, store } = stores();
    await old.save([record('aaaaaaaaaaaa', 1), record('cccccccccccc', 3)]);
    await moved.save([record('bbbbbbbbbbbb', 2)]);
    expect(await ids(store)).toEqual(['aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'cccccccccccc']);
    expect(store.pending).toBe(true);
    // A daemon that loaded and was then refused the state directory writes nothing: nothing moved.
    expect(await ids(old)).toEqual(['aaaaaaaaaaaa', 'cccccccccccc']);
    expect(await ids(moved)).toEqual(['bbbbbbbbbbbb']);
  });

  it('are moved by the first save: written under the new name, then removed from the old one', async () => {
    const { moved, old, store } = stores();
    await old.save([record('aaaaaaaaaaaa', 1)]);
    const { records } = await store.load();
    await store.save(records);
    expect(store.pending).toBe(false);
    expect(await ids(moved)).toEqual(['aaaaaaaaaaaa']);
    expect(await ids(old)).toEqual([]);
  });

  it('are picked up once: after the move the old place is not read again', async () => {
    const { old, store } = stores();
    await old.save([record('aaaaaaaaaaaa', 1)]);
    await store.save((await store.load()).records);
    // Something writes the old place afterwards (a daemon of the previous version started there).
    await old.save([record('dddddddddddd', 4)]);
    expect(await ids(store)).toEqual(['aaaaaaaaaaaa']);
    expect(await ids(old)).toEqual(['dddddddddddd']);
  });

  it("keep the new place's record when both hold the same session", async () => {
    const { moved, old, store } = stores();
    await old.save([{ ...record('aaaaaaaaaaaa', 1), port: 20_001 }]);
    await moved.save([{ ...record('aaaaaaaaaaaa', 1), port: 20_002 }]);
    expect((await store.load()).records).toEqual([{ ...record('aaaaaaaaaaaa', 1), port: 20_002 }]);
  });

  it('stay in the old place when the new one cannot be written: nothing is lost', async () => {
    const { old, moved } = stores();
    await old.save([record('aaaaaaaaaaaa', 1)]);
    const store = withMovedRecords({ load: () => moved.load(), save: () => Promise.reject(new Error('keyring write refused')), clear: () => moved.clear() }, old);
    await expect(store.save((await store.load()).records)).rejects.toThrow('keyring write refused');
    expect(await ids(old)).toEqual(['aaaaaaaaaaaa']);
    expect(store.pending).toBe(true);
  });

  it("are forgotten with the new place's by clear (`vault server stop` after a crash)", async () => {
    const { moved, old, store } = stores();
    await old.save([record('aaaaaaaaaaaa', 1)]);
    await moved.save([record('bbbbbbbbbbbb', 2)]);
    expect(await store.clear()).toBe(true);
    expect(await ids(old)).toEqual([]);
    expect(await ids(moved)).toEqual([]);
  });
});
