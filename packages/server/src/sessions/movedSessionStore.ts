import type { SessionLoadResult, SessionRecord, SessionStore } from './sessionStore.js';

export interface MovedSessionStore extends SessionStore {
  /** Records were loaded from the old place and are there until the next save completes. */
  readonly pending: boolean;
}

/**
 * The session store of a daemon whose state directory moved (from `~/.vault/daemon` to
 * `$XDG_RUNTIME_DIR/vault`). Records are kept under a name derived from the state directory
 * (storeScope), so a daemon in the new place would not see what a daemon killed in the old place
 * left. A load returns them with the new place's own (by session id, the new place's win). They
 * are moved, not copied, and once: the first save that succeeds — the daemon's whole set, written
 * under the new name — removes the old item, and the old place is not read again. Nothing is
 * written before that save, so a daemon that loads and is then refused (another one won the state
 * directory) moves nothing, and a crash before it leaves the records where they were.
 */
export function withMovedRecords(store: SessionStore, old: SessionStore): MovedSessionStore {
  let state: 'unread' | 'pending' | 'done' = 'unread';
  return {
    get pending() {
      return state === 'pending';
    },
    async load(): Promise<SessionLoadResult> {
      const own = await store.load();
      if (state === 'done') return own;
      const previous = await old.load();
      if (previous.records.length === 0) {
        state = 'done';
        return { records: own.records, skipped: [...own.skipped, ...previous.skipped] };
      }
      state = 'pending';
      const ids = new Set(own.records.map((r) => r.id));
      const records: SessionRecord[] = [...own.records, ...previous.records.filter((r) => !ids.has(r.id))];
      records.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return { records, skipped: [...own.skipped, ...previous.skipped] };
    },
    async save(records): Promise<void> {
      await store.save(records);
      if (state !== 'pending') return;
      await old.clear();
      state = 'done';
    },
    async clear(): Promise<boolean> {
      const cleared = await store.clear();
      // Forgetting the sessions (`vault server stop` after a crash) forgets the old place's too.
      const clearedOld = state === 'done' ? false : await old.clear();
      return cleared || clearedOld;
    },
  };
}
