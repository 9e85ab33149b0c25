import { isVaultError, systemClock, VaultError, type Clock } from '@vault/core';
import type { CredentialSourceFactory, SessionSourceRequest } from '../credentialSource.js';
import { AuditLog, silentLogger, type Logger } from '../logging.js';
import type { BackoffPolicy } from './refreshingCredentials.js';
import type { Scheduler } from './scheduler.js';
import { ownerInfo, RestoredSource } from './restore.js';
import { newSessionId, Session, type ImdsListener, type SessionEvents, type SessionKind, type SessionOwnerInfo, type SessionRequestInfo } from './session.js';
import type { SessionRecord, SessionStore } from './sessionStore.js';

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

/** The record writer: writes the whole set in order, coalescing a burst into one write of the latest state. */
interface RecordWriter {
  dirty: boolean;
  running: Promise<void> | undefined;
  /** Set by release(): a failed start writes nothing. */
  held: boolean;
}

/** Every session in the daemon, by id. */
export class SessionRegistry {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly audit: AuditLog;
  private readonly sessions = new Map<string, Session>();
  private readonly events: SessionEvents;
  private readonly writer: RecordWriter = { dirty: false, running: undefined, held: false };
  /** Restored sessions whose port could not be had: the port their clients still use. */
  private readonly wantedPorts = new Map<string, number>();

  constructor(private readonly init: SessionRegistryInit) {
    this.clock = init.clock ?? systemClock;
    this.logger = init.logger ?? init.audit?.logger ?? silentLogger();
    this.audit = init.audit ?? new AuditLog(this.logger, false);
    const logger = this.logger;
    const persistRefresh = (session: Session) => void this.persist(session);
    this.events = {
      refreshed(session, prepared, roleArn) {
        // The record carries the credentials being served, so a restore needs no STS call.
        if (roleArn === undefined) persistRefresh(session);
        logger.info(
          { event: 'credentials-refreshed', session: session.id, profile: session.profile, ...(roleArn ? { roleArn } : {}), expiration: new Date(prepared.expiresAt).toISOString() },
          'credentials refreshed',
        );
      },
      refreshFailed(session, error, info) {
        logger.warn(
          {
            event: 'refresh-failed',
            session: session.id,
            profile: session.profile,
            ...(info.roleArn ? { roleArn: info.roleArn } : {}),
            code: isVaultError(error) ? error.code : 'INTERNAL',
            message: error instanceof Error ? error.message : String(error),
            action: info.action,
            retryAt: info.retryAt === undefined ? undefined : new Date(info.retryAt).toISOString(),
            stillServing: info.stillServing,
          },
          'credential refresh failed',
        );
      },
    };
  }

  /** Where sessions get their credentials; the control API's credential route resolves through it too. */
  get sourceFactory(): CredentialSourceFactory {
    return this.init.sourceFactory;
  }

  get size(): number {
    return this.sessions.size;
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
      clock: this.clock,
      ...(this.init.scheduler ? { scheduler: this.init.scheduler } : {}),
      ...(this.init.random ? { random: this.init.random } : {}),
      ...(this.init.backoff ? { backoff: this.init.backoff } : {}),
      events: this.events,
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

  /**
   * Brings back a session a killed daemon held: the same id, token, kind and creation time, the
   * credentials it was serving (no STS call while they are servable), and for IMDS its own port.
   * It is registered whatever happens; what went wrong is its state (`failed` with the reason
   * when its port is taken: the URI its clients hold cannot be served, and it is not moved).
   */
  async restore(record: SessionRecord, credentialPort: number): Promise<Session> {
    if (this.sessions.has(record.id)) return this.sessions.get(record.id)!;
    const sourceRequest: SessionSourceRequest = { profile: record.profile };
    const requestInfo: SessionRequestInfo = {};
    if (record.durationSeconds !== undefined) sourceRequest.durationSeconds = requestInfo.durationSeconds = record.durationSeconds;
    if (record.requestedRegion !== undefined) sourceRequest.region = requestInfo.region = record.requestedRegion;
    if (record.noSession === true) sourceRequest.noSession = requestInfo.noSession = true;
    const session = new Session({
      id: record.id,
      token: record.token,
      source: new RestoredSource(this.init.sourceFactory, sourceRequest, record),
      kind: record.kind,
      lazy: record.lazy,
      createdAt: record.createdAt,
      request: requestInfo,
      ...(record.owner ? { owner: record.owner } : {}),
      restored: true,
      clock: this.clock,
      ...(this.init.scheduler ? { scheduler: this.init.scheduler } : {}),
      ...(this.init.random ? { random: this.init.random } : {}),
      ...(this.init.backoff ? { backoff: this.init.backoff } : {}),
      events: this.events,
    });
    const c = record.credentials;
    const seeded = c
      ? session.credentials.seed(
          { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: new Date(c.expiration) },
          c.fetchedAt,
        )
      : false;
    this.sessions.set(session.id, session);
    if (record.kind === 'ecs' && record.port !== credentialPort) {
      this.markPortTaken(session, record.port, `the credential port ${record.port} was taken while the daemon was down`);
    }
    if (record.kind === 'imds' && this.init.openImdsListener) {
      try {
        session.imds = await this.init.openImdsListener(session, record.port);
      } catch (error) {
        this.markPortTaken(session, record.port, `its IMDS port ${record.port} could not be listened on again (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    this.logger.info(
      {
        event: 'session-restore',
        session: session.id,
        profile: session.profile,
        kind: session.kind,
        lazy: session.lazy,
        port: record.port,
        servingRestoredCredentials: seeded,
        ...(session.fault ? { code: session.fault.code } : {}),
      },
      'session restored',
    );
    return session;
  }

  /**
   * After a restore, in the background: a session with nothing servable fetches now (unless
   * lazy); one serving restored credentials checks, without STS, that its MFA session still
   * lives, and otherwise shows needs-mfa at once. Never throws.
   */
  async verifyRestored(session: Session): Promise<void> {
    if (session.state === 'stopped' || session.fault) return;
    try {
      if (!session.currentCredentials()) {
        if (!session.lazy) await session.start();
        return;
      }
      const source = session.source as Partial<RestoredSource>;
      const usable = typeof source.mfaSessionUsable === 'function' ? await source.mfaSessionUsable() : undefined;
      if (usable === false) {
        session.markNeedsMfa(
          new VaultError('SESSION_NEEDS_MFA', `the MFA session for profile ${session.profile} ended while the daemon was down`, {
            hint: `run \`vault session renew ${session.id}\` to enter a new MFA code; the URI and token stay the same`,
          }),
        );
        this.logger.warn({ event: 'restored-needs-mfa', session: session.id, profile: session.profile }, 'restored session needs a new MFA code');
      }
    } catch (error) {
      this.logger.warn(
        { event: 'restore-check-failed', session: session.id, profile: session.profile, code: isVaultError(error) ? error.code : 'INTERNAL', message: error instanceof Error ? error.message : String(error) },
        'restored session could not be checked',
      );
    }
  }

  /** A restored session that cannot have its port back: `failed`, saying why and what to run. */
  markPortTaken(session: Session, port: number, why: string): void {
    this.wantedPorts.set(session.id, port);
    session.fault = {
      code: 'PORT_IN_USE',
      message: `session ${session.id} (profile ${session.profile}) could not be restored as it was: ${why}; its clients' endpoint no longer reaches it. Run \`vault session renew ${session.id}\` to try again, or stop it and start a new one`,
      at: this.clock.now(),
    };
    this.logger.error({ event: 'restore-port-failed', session: session.id, profile: session.profile, kind: session.kind, port }, 'restored session cannot listen on its port');
  }

  /** The record a restarted daemon needs for `session` (secrets included: for the keyring only). */
  record(session: Session): SessionRecord {
    const wanted = this.wantedPorts.get(session.id);
    const port = session.kind === 'imds' ? (session.imds?.port ?? wanted ?? 0) : (wanted ?? this.init.credentialPort?.() ?? 0);
    const record: SessionRecord = {
      version: 1,
      id: session.id,
      token: session.token,
      profile: session.profile,
      kind: session.kind,
      lazy: session.lazy,
      createdAt: session.createdAt,
      port,
    };
    if (session.request.durationSeconds !== undefined) record.durationSeconds = session.request.durationSeconds;
    if (session.request.region !== undefined) record.requestedRegion = session.request.region;
    if (session.request.noSession === true) record.noSession = true;
    if (session.region !== undefined) record.region = session.region;
    if (session.owner) record.owner = session.owner;
    const mfa = session.mfaExpiration();
    if (mfa) record.mfaExpiration = mfa.getTime();
    const latest = session.credentials.latest;
    if (latest && latest.expiresAt > this.clock.now()) {
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
    if (!this.init.store || (session && this.sessions.get(session.id) !== session)) return Promise.resolve();
    return this.writeRecords();
  }

  /** Resolves when no record write is pending (the daemon's clean stop waits for it). */
  async flushRecords(): Promise<void> {
    while (this.writer.running) await this.writer.running;
  }

  private writeRecords(): Promise<void> {
    const store = this.init.store;
    const w = this.writer;
    if (!store || w.held) return Promise.resolve();
    w.dirty = true;
    w.running ??= (async () => {
      while (w.dirty && !w.held) {
        w.dirty = false;
        const records = this.list()
          .filter((s) => s.state !== 'stopped')
          .map((s) => this.record(s))
          .filter((r) => r.port !== 0);
        try {
          await store.save(records);
        } catch (error) {
          this.logger.warn(
            { event: 'session-record-failed', sessions: records.length, code: isVaultError(error) ? error.code : 'INTERNAL', message: error instanceof Error ? error.message : String(error) },
            'sessions could not be recorded in the keyring; they would not survive a daemon crash',
          );
        }
      }
      w.running = undefined;
    })();
    return w.running;
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
      if (session.fault) await this.retryPort(session);
      await session.renew(mfaToken);
    } catch (error) {
      this.audit.session('renew', session, { ok: false, code: isVaultError(error) ? error.code : 'INTERNAL' });
      throw error;
    }
    this.audit.session('renew', session, { ok: true });
    return session;
  }

  /** A restored session whose port was taken: listen on it again if it is free now. */
  private async retryPort(session: Session): Promise<void> {
    const wanted = this.wantedPorts.get(session.id);
    const fault = session.fault!;
    if (session.kind === 'imds' && wanted !== undefined && this.init.openImdsListener) {
      try {
        session.imds = await this.init.openImdsListener(session, wanted);
      } catch {
        throw new VaultError('DAEMON_UNAVAILABLE', fault.message);
      }
    } else if (session.kind !== 'ecs' || wanted !== this.init.credentialPort?.()) {
      throw new VaultError('DAEMON_UNAVAILABLE', fault.message);
    }
    session.fault = undefined;
    this.wantedPorts.delete(session.id);
    await this.persist(session);
  }

  async stop(id: string, extra: Record<string, unknown> = {}): Promise<Session> {
    const session = this.require(id);
    this.sessions.delete(id);
    await session.stop();
    this.wantedPorts.delete(id);
    // Off the answer's path (with the file backend a write costs a key derivation): `vault exec`
    // does not wait for it to exit. Were the daemon killed before it lands, a restart would bring
    // the session back — and drop it at once if it belonged to a `vault exec` that has ended.
    void this.writeRecords();
    this.audit.session('stop', session, { requestsServed: session.requestsServed, ...extra });
    return session;
  }

  /**
   * Stops the sessions of `vault exec --server` processes that ended without stopping them
   * (killed with SIGKILL, or crashed): as with aws-vault, whose server dies with its process, an
   * endpoint does not outlive the command it was made for — the same rule a restore applies.
   * Returns the ids stopped.
   */
  async stopOrphaned(alive: (owner: SessionOwnerInfo) => boolean): Promise<string[]> {
    const ended = [...this.sessions.values()].filter((session) => session.owner !== undefined && !alive(session.owner));
    await Promise.all(ended.map((session) => this.stop(session.id, { reason: 'owner-ended', ownerPid: session.owner!.pid }).catch(() => undefined)));
    return ended.map((session) => session.id);
  }

  /**
   * Stops every session's timers and listeners but keeps its record, as if the daemon had been
   * killed: for a start that fails after restoring, so the next start can try again.
   */
  async release(): Promise<void> {
    this.writer.held = true;
    await this.flushRecords();
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
