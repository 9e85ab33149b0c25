import { isVaultError, systemClock, VaultError, type Clock } from '@vault/core';
import type { CredentialSourceFactory, SessionSourceRequest } from '../credentialSource.js';
import { AuditLog, silentLogger, type Logger } from '../logging.js';
import { ownerInfo, stopOrphanedSessions } from './orphanReaping.js';
import { PortFaults } from './portFaults.js';
import type { BackoffPolicy } from './refreshingCredentials.js';
import { restoreSession, verifyRestored } from './restoreSession.js';
import type { Scheduler } from './scheduler.js';
import { newSessionId, Session, type ImdsListener, type SessionInit, type SessionKind, type SessionOwnerInfo, type SessionRequestInfo } from './session.js';
import { sessionEvents } from './sessionEvents.js';
import { SessionRecords } from './sessionRecords.js';
import type { SessionRecord, SessionStore } from './sessionStore.js';

// The registry holds the daemon's sessions by id and answers for them; its other jobs each have a
// file: records in the store (sessionRecords.ts), bringing sessions back (restoreSession.ts),
// restored ports that could not be had (portFaults.ts), sessions whose owner ended (orphanReaping.ts).

export interface CreateSessionRequest extends SessionSourceRequest {
  kind: SessionKind;
  /** Defer the first upstream call to the first request (`--lazy`). */
  lazy?: boolean;
  /** The `vault exec --server` process the session belongs to (a restore drops it once that is gone). */
  ownerPid?: number;
}

export interface SessionRegistryInit {
  sourceFactory: CredentialSourceFactory;
  clock?: Clock;
  /** Keeps sessions warm on timers (the daemon passes systemScheduler; tests a ManualScheduler). */
  scheduler?: Scheduler;
  random?: () => number;
  backoff?: BackoffPolicy;
  logger?: Logger;
  audit?: AuditLog;
  /**
   * Opens the per-session listener of an IMDS session on 127.0.0.1: on `port` when given (a
   * restored session keeps its endpoint), else on a free port the daemon picks.
   */
  openImdsListener?: (session: Session, port?: number) => Promise<ImdsListener>;
  /** A bound on sessions per daemon, so a runaway script cannot exhaust ports and memory. */
  maxSessions?: number;
  /**
   * Where sessions are recorded so that a restarted daemon can bring them back (the keyring):
   * the whole set is written on start (before the creator is answered), after each refresh and
   * on stop (in the background), and removed when the last session stops.
   */
  store?: SessionStore;
  /** The daemon's credential port (what container session URIs name), for the records. */
  credentialPort?: () => number;
  /** Identifies an owner process (pid and start time); defaults to /proc on Linux. */
  ownerInfo?: (pid: number) => SessionOwnerInfo | undefined;
}

/** Every session in the daemon, by id. */
export class SessionRegistry {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly audit: AuditLog;
  private readonly sessions = new Map<string, Session>();
  private readonly events: ReturnType<typeof sessionEvents>;
  private readonly ports: PortFaults;
  private readonly records: SessionRecords;

  constructor(private readonly init: SessionRegistryInit) {
    this.clock = init.clock ?? systemClock;
    this.logger = init.logger ?? init.audit?.logger ?? silentLogger();
    this.audit = init.audit ?? new AuditLog(this.logger, false);
    this.events = sessionEvents(this.logger, (session) => void this.persist(session));
    this.ports = new PortFaults({ clock: this.clock, logger: this.logger, openImdsListener: init.openImdsListener, credentialPort: init.credentialPort });
    this.records = new SessionRecords({
      store: init.store,
      clock: this.clock,
      logger: this.logger,
      sessions: () => this.list(),
      holds: (session) => this.sessions.get(session.id) === session,
      portOf: (session) => this.ports.recordedPort(session),
    });
  }

  /** Where sessions get their credentials; the control API's credential route resolves through it too. */
  get sourceFactory(): CredentialSourceFactory {
    return this.init.sourceFactory;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** What every session of this registry is made with. */
  private sessionOptions(): Pick<SessionInit, 'clock' | 'scheduler' | 'random' | 'backoff' | 'events'> {
    return {
      clock: this.clock,
      ...(this.init.scheduler ? { scheduler: this.init.scheduler } : {}),
      ...(this.init.random ? { random: this.init.random } : {}),
      ...(this.init.backoff ? { backoff: this.init.backoff } : {}),
      events: this.events,
    };
  }

  /**
   * Creates the source (the factory may call GetSessionToken with the request's MFA code), then,
   * unless lazy, fetches the first credentials: a session that cannot get credentials is not
   * created, and the caller sees the source's error.
   */
  async create(request: CreateSessionRequest): Promise<Session> {
    const max = this.init.maxSessions ?? 256;
    if (this.sessions.size >= max) {
      throw new VaultError('USAGE', `the daemon already holds ${max} sessions`, { hint: 'stop some with `vault session stop`' });
    }
    const { kind, lazy, ownerPid, ...sourceRequest } = request;
    const source = await this.init.sourceFactory.create(sourceRequest);
    let id = newSessionId();
    while (this.sessions.has(id)) id = newSessionId();
    const requestInfo: SessionRequestInfo = {};
    if (sourceRequest.durationSeconds !== undefined) requestInfo.durationSeconds = sourceRequest.durationSeconds;
    if (sourceRequest.region !== undefined) requestInfo.region = sourceRequest.region;
    if (sourceRequest.noSession === true) requestInfo.noSession = true;
    const owner = ownerPid === undefined ? undefined : (this.init.ownerInfo ?? ownerInfo)(ownerPid);
    const session = new Session({
      id,
      source,
      kind,
      lazy: lazy ?? false,
      request: requestInfo,
      ...(owner ? { owner } : {}),
      ...this.sessionOptions(),
    });
    try {
      if (!session.lazy) await session.start();
      if (kind === 'imds' && this.init.openImdsListener) session.imds = await this.init.openImdsListener(session);
    } catch (error) {
      await session.stop();
      throw error;
    }
    this.sessions.set(session.id, session);
    this.audit.session('start', session, session.imds ? { imdsPort: session.imds.port } : {});
    // Recorded before the creator hears of it: a session someone was told about survives a crash.
    await this.persist(session);
    return session;
  }

  /** Brings back a session a killed daemon held (see restoreSession); one already here is returned as it is. */
  async restore(record: SessionRecord, credentialPort: number): Promise<Session> {
    if (this.sessions.has(record.id)) return this.sessions.get(record.id)!;
    return restoreSession(
      {
        sourceFactory: this.init.sourceFactory,
        sessionOptions: () => this.sessionOptions(),
        add: (session) => this.sessions.set(session.id, session),
        ports: this.ports,
        openImdsListener: this.init.openImdsListener,
        logger: this.logger,
      },
      record,
      credentialPort,
    );
  }

  /** After a restore, in the background: see verifyRestored. Never throws. */
  verifyRestored(session: Session): Promise<void> {
    return verifyRestored(session, this.logger);
  }

  /** A restored session that cannot have its port back: `failed`, saying why and what to run. */
  markPortTaken(session: Session, port: number, why: string): void {
    this.ports.markPortTaken(session, port, why);
  }

  /** The record a restarted daemon needs for `session` (secrets included: for the keyring only). */
  record(session: Session): SessionRecord {
    return this.records.record(session);
  }

  /** Records the sessions in the store; resolves once a write with `session` as it is now is done (see SessionRecords). */
  persist(session?: Session): Promise<void> {
    return this.records.persist(session);
  }

  /** Resolves when no record write is pending (the daemon's clean stop waits for it). */
  flushRecords(): Promise<void> {
    return this.records.flush();
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  require(id: string): Session {
    const session = this.sessions.get(id);
    if (!session) {
      throw new VaultError('SESSION_NOT_FOUND', `no session with id ${id}`, { hint: 'list sessions with `vault session ls`' });
    }
    return session;
  }

  list(): Session[] {
    return [...this.sessions.values()];
  }

  /** Sessions of a profile, the most useful first (servable credentials, then the most life left). */
  byProfile(profile: string): Session[] {
    const now = this.clock.now();
    const score = (s: Session) => {
      const latest = s.credentials.latest;
      if (!latest || !latest.servable(now)) return s.state === 'active' ? 0 : -1;
      return latest.expiresAt;
    };
    return this.list()
      .filter((s) => s.profile === profile)
      .sort((a, b) => score(b) - score(a));
  }

  async renew(id: string, mfaToken?: string): Promise<Session> {
    const session = this.require(id);
    try {
      if (session.fault) {
        await this.ports.retryPort(session);
        await this.persist(session);
      }
      await session.renew(mfaToken);
    } catch (error) {
      this.audit.session('renew', session, { ok: false, code: isVaultError(error) ? error.code : 'INTERNAL' });
      throw error;
    }
    this.audit.session('renew', session, { ok: true });
    return session;
  }

  async stop(id: string, extra: Record<string, unknown> = {}): Promise<Session> {
    const session = this.require(id);
    this.sessions.delete(id);
    await session.stop();
    this.ports.forget(id);
    // Off the answer's path (with the file backend a write costs a key derivation): `vault exec`
    // does not wait for it to exit. Were the daemon killed before it lands, a restart would bring
    // the session back — and drop it at once if it belonged to a `vault exec` that has ended.
    void this.records.write();
    this.audit.session('stop', session, { requestsServed: session.requestsServed, ...extra });
    return session;
  }

  /** Stops the sessions of `vault exec --server` processes that ended without stopping them (see orphanReaping.ts). */
  stopOrphaned(alive: (owner: SessionOwnerInfo) => boolean): Promise<string[]> {
    return stopOrphanedSessions(this, alive);
  }

  /**
   * Stops every session's timers and listeners but keeps its record, as if the daemon had been
   * killed: for a start that fails after restoring, so the next start can try again.
   */
  async release(): Promise<void> {
    await this.records.hold();
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map((session) => session.stop().catch(() => undefined)));
  }

  async stopAll(): Promise<string[]> {
    const ids = [...this.sessions.keys()];
    await Promise.all(ids.map((id) => this.stop(id).catch(() => undefined)));
    // All stopped: the store is emptied (the item removed) before the daemon's clean stop goes on.
    await this.flushRecords();
    return ids;
  }
}
