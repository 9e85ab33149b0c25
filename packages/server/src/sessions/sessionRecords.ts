import { isVaultError, type Clock } from '@vault/core';
import type { Logger } from '../logging.js';
import type { Session } from './session.js';
import type { SessionRecord, SessionStore } from './sessionStore.js';

// The daemon's sessions as records in the store (the keyring), so that a restarted daemon can
// bring them back: the whole set is written in order, a burst coalesced into one write of the
// latest state.

export interface SessionRecordsInit {
  store?: SessionStore | undefined;
  clock: Clock;
  logger: Logger;
  /** The sessions the daemon holds now. */
  sessions: () => Session[];
  /** Whether `session` is (still) the one the registry holds under its id. */
  holds: (session: Session) => boolean;
  /** The port a session's record names. */
  portOf: (session: Session) => number;
}

export class SessionRecords {
  private dirty = false;
  private running: Promise<void> | undefined;
  /** Set by hold(): a failed start writes nothing. */
  private held = false;

  constructor(private readonly init: SessionRecordsInit) {}

  /** The record a restarted daemon needs for `session` (secrets included: for the keyring only). */
  record(session: Session): SessionRecord {
    const record: SessionRecord = {
      version: 1,
      id: session.id,
      token: session.token,
      profile: session.profile,
      kind: session.kind,
      lazy: session.lazy,
      createdAt: session.createdAt,
      port: this.init.portOf(session),
    };
    if (session.request.durationSeconds !== undefined) record.durationSeconds = session.request.durationSeconds;
    if (session.request.region !== undefined) record.requestedRegion = session.request.region;
    if (session.request.noSession === true) record.noSession = true;
    if (session.region !== undefined) record.region = session.region;
    if (session.owner) record.owner = session.owner;
    const mfa = session.mfaExpiration();
    if (mfa) record.mfaExpiration = mfa.getTime();
    const latest = session.credentials.latest;
    if (latest && latest.expiresAt > this.init.clock.now()) {
      const c = latest.credentials;
      record.credentials = {
        accessKeyId: c.accessKeyId,
        secretAccessKey: c.secretAccessKey,
        sessionToken: c.sessionToken,
        expiration: latest.expiresAt,
        fetchedAt: latest.fetchedAt,
      };
    }
    return record;
  }

  /**
   * Records the sessions in the store (after any write in progress; a burst of calls writes once
   * more, with the latest state), and resolves once a write that includes `session` as it is now
   * is done. A failed write is logged, never thrown: the sessions work, they just would not
   * survive a crash.
   */
  persist(session?: Session): Promise<void> {
    if (!this.init.store || (session && !this.init.holds(session))) return Promise.resolve();
    return this.write();
  }

  /** Resolves when no record write is pending (the daemon's clean stop waits for it). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  /** From now on nothing is written (a start that fails keeps the records it restored from). */
  async hold(): Promise<void> {
    this.held = true;
    await this.flush();
  }

  /** Writes the whole set (whatever the session: a stopped one is left out). */
  write(): Promise<void> {
    const store = this.init.store;
    if (!store || this.held) return Promise.resolve();
    this.dirty = true;
    this.running ??= (async () => {
      while (this.dirty && !this.held) {
        this.dirty = false;
        const records = this.init
          .sessions()
          .filter((s) => s.state !== 'stopped')
          .map((s) => this.record(s))
          .filter((r) => r.port !== 0);
        try {
          await store.save(records);
        } catch (error) {
          this.init.logger.warn(
            { event: 'session-record-failed', sessions: records.length, code: isVaultError(error) ? error.code : 'INTERNAL', message: error instanceof Error ? error.message : String(error) },
            'sessions could not be recorded in the keyring; they would not survive a daemon crash',
          );
        }
      }
      this.running = undefined;
    })();
    return this.running;
  }
}
