import type { SessionLoadResult, SessionRecord, SessionStore } from './sessionStore.js';

/**
 * The session store of a daemon whose state directory moved (from `~/.vault/daemon` to
 * `$XDG_RUNTIME_DIR/vault`). Records are kept under a name derived from the state directory
 * (storeScope), so a daemon in the new place would not see what a daemon killed in the old place
 * left. Its first load takes those records too, writes them under its own name and only then
 * removes the old item: they are picked up once — moved, not copied — and a crash between the two
 * writes leaves both, which the next load merges again (by session id) rather than losing any.
 * The old store is never read again after the first load that found it empty or moved it.
 */
export function withMovedRecords(store: SessionStore, old: SessionStore): SessionStore {
  let moved = false;
  return {
    async load(): Promise<SessionLoadResult> {
      const own = await store.load();
      if (moved) return own;
      const previous = await old.load();
      if (previous.records.length === 0 && previous.skipped.length === 0) {
        moved = true;
        return own;
      }
      const ids = new Set(own.records.map((r) => r.id));
      const merged: SessionRecord[] = [...own.records, ...previous.records.filter((r) => !ids.has(r.id))];
      merged.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      if (merged.length > own.records.length) await store.save(merged);
      await old.clear();
      moved = true;
      return { records: merged, skipped: [...own.skipped, ...previous.skipped] };
    },
    save: (records) => store.save(records),
    clear: async () => {
      const cleared = await store.clear();
      // Forgetting the sessions (`vault server stop` after a crash) forgets the old place's too.
      const clearedOld = await old.clear();
      return cleared || clearedOld;
    },
  };
}
