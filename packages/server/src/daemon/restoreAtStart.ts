import { isVaultError } from '@vault/core';
import type { Logger } from '../logging.js';
import { loadForRestore, type LoadedForRestore } from '../sessions/restore.js';
import type { Session, SessionOwnerInfo } from '../sessions/session.js';
import type { SessionRegistry } from '../sessions/sessionRegistry.js';
import type { SessionStore } from '../sessions/sessionStore.js';

// A starting daemon brings back the sessions a killed one left in the store: read while fastify
// compiles its routes, registered before anything listens, reported once the listeners are up,
// and checked in the background.

/** What a start restored from the session store. */
export interface RestoreSummary {
  /** Sessions back under their old ids (those in `failed` included). */
  restored: string[];
  /** Restored, but in state `failed` (their port was taken). */
  failed: string[];
  /** Forgotten: the `vault exec --server` that owned them had ended. */
  dropped: string[];
  /** Records that could not be read. */
  skipped: Array<{ id: string; reason: string }>;
  /** Why nothing could be restored (the keyring could not be read), if so. */
  error?: string;
  /** From the start of startDaemon until the credential listener served the restored sessions. */
  ms: number;
  /** Of which reading the records from the keyring (one decryption per session with the file backend). */
  loadMs: number;
}

/** The store's records being read, with how long that took and why it failed, once it has. */
export interface RestoreLoad {
  readonly loading: Promise<LoadedForRestore | undefined>;
  readonly loadMs: number;
  readonly error: string | undefined;
}

/**
 * Starts reading the records (without a store: nothing). A store that cannot be read restores
 * nothing: the records stay in the keyring, and a later start that can read it restores them.
 */
export function startRestoreLoad(store: SessionStore | undefined, ownerAlive: (owner: SessionOwnerInfo) => boolean, logger: Logger): RestoreLoad {
  let error: string | undefined;
  let loadMs = 0;
  const loadStart = Date.now();
  const loading: Promise<LoadedForRestore | undefined> = store
    ? loadForRestore(store, ownerAlive).finally(() => (loadMs = Date.now() - loadStart)).catch((cause: unknown) => {
        error = isVaultError(cause) ? cause.message : 'the keyring could not be read';
        logger.error({ event: 'restore-failed', code: isVaultError(cause) ? cause.code : 'INTERNAL', message: error }, 'sessions could not be restored');
        return undefined;
      })
    : Promise.resolve(undefined);
  return {
    loading,
    get loadMs() {
      return loadMs;
    },
    get error() {
      return error;
    },
  };
}

/** Restored sessions are registered before anything listens: a client's first request after the restart finds its session. */
export async function restoreSessions(registry: SessionRegistry, loaded: LoadedForRestore | undefined, credentialPort: number): Promise<Session[]> {
  const restored: Session[] = [];
  for (const record of loaded?.records ?? []) restored.push(await registry.restore(record, credentialPort));
  return restored;
}

/** What was restored, logged; `startMs` is when startDaemon began. */
export function reportRestore(load: RestoreLoad, loaded: LoadedForRestore | undefined, restored: readonly Session[], startMs: number, logger: Logger): RestoreSummary {
  const restore: RestoreSummary = {
    restored: restored.map((s) => s.id),
    failed: restored.filter((s) => s.fault).map((s) => s.id),
    dropped: loaded?.dropped.map((r) => r.id) ?? [],
    skipped: loaded?.skipped ?? [],
    ...(load.error === undefined ? {} : { error: load.error }),
    ms: Date.now() - startMs,
    loadMs: load.loadMs,
  };
  for (const skipped of restore.skipped) logger.warn({ event: 'restore-skipped', session: skipped.id, reason: skipped.reason }, 'a session record could not be restored');
  for (const record of loaded?.dropped ?? []) {
    logger.info({ event: 'restore-dropped', session: record.id, profile: record.profile, ownerPid: record.owner?.pid }, 'session forgotten: the vault exec that owned it has ended');
  }
  if (restored.length > 0 || restore.dropped.length > 0 || restore.skipped.length > 0) {
    logger.info({ event: 'sessions-restored', ...restore, skipped: restore.skipped.length }, 'sessions restored');
  }
  return restore;
}

/**
 * Off the start path: a fetch for sessions with nothing servable, an MFA check for the others;
 * and the store rewritten without what could not be restored.
 */
export function checkRestored(registry: SessionRegistry, restored: readonly Session[], restore: RestoreSummary | undefined): Promise<void> {
  return Promise.all([
    ...restored.map((session) => registry.verifyRestored(session)),
    restore && (restore.dropped.length > 0 || restore.skipped.length > 0) ? registry.persist() : undefined,
  ]).then(() => undefined);
}
