import { isVaultError, systemClock, VaultError, type Clock } from '@vault/core';
import type { CredentialSourceFactory, SessionSourceRequest } from '../credentialSource.js';
import { AuditLog, silentLogger, type Logger } from '../logging.js';
import type { BackoffPolicy } from './refreshingCredentials.js';
import type { Scheduler } from './scheduler.js';
import { newSessionId, Session, type ImdsListener, type SessionEvents, type SessionKind } from './session.js';

export interface CreateSessionRequest extends SessionSourceRequest {
  kind: SessionKind;
  /** Defer the first upstream call to the first request (`--lazy`). */
  lazy?: boolean;
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
  /** Opens the per-session listener of an IMDS session; the daemon binds 127.0.0.1:0. */
  openImdsListener?: (session: Session) => Promise<ImdsListener>;
  /** A bound on sessions per daemon, so a runaway script cannot exhaust ports and memory. */
  maxSessions?: number;
}

/** Every session in the daemon, by id. */
export class SessionRegistry {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly audit: AuditLog;
  private readonly sessions = new Map<string, Session>();
  private readonly events: SessionEvents;

  constructor(private readonly init: SessionRegistryInit) {
    this.clock = init.clock ?? systemClock;
    this.logger = init.logger ?? init.audit?.logger ?? silentLogger();
    this.audit = init.audit ?? new AuditLog(this.logger, false);
    const logger = this.logger;
    this.events = {
      refreshed(session, prepared, roleArn) {
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
    const { kind, lazy, ...sourceRequest } = request;
    const source = await this.init.sourceFactory.create(sourceRequest);
    let id = newSessionId();
    while (this.sessions.has(id)) id = newSessionId();
    const session = new Session({
      id,
      source,
      kind,
      lazy: lazy ?? false,
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
    return session;
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
      await session.renew(mfaToken);
    } catch (error) {
      this.audit.session('renew', session, { ok: false, code: isVaultError(error) ? error.code : 'INTERNAL' });
      throw error;
    }
    this.audit.session('renew', session, { ok: true });
    return session;
  }

  async stop(id: string): Promise<Session> {
    const session = this.require(id);
    this.sessions.delete(id);
    await session.stop();
    this.audit.session('stop', session, { requestsServed: session.requestsServed });
    return session;
  }

  async stopAll(): Promise<string[]> {
    const ids = [...this.sessions.keys()];
    await Promise.all(ids.map((id) => this.stop(id).catch(() => undefined)));
    return ids;
  }
}
