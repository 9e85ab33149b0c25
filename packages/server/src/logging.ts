import { chmodSync, closeSync, openSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';
import { defaultPeerPidResolver, noPeerPid, type PeerPidResolver, type PeerSocket } from './peerPid.js';
import type { Session } from './sessions/session.js';

export type { Logger } from 'pino';

/**
 * Everything that could carry a secret, censored by pino before a line is written: the tokens
 * clients present, and credential fields in any object that reaches a log call by mistake.
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["x-aws-ec2-metadata-token"]',
  'headers.authorization',
  'headers["x-aws-ec2-metadata-token"]',
  'token',
  'mfaToken',
  'secretAccessKey',
  'sessionToken',
  'SecretAccessKey',
  'SessionToken',
  'Token',
  'credentials',
  '*.token',
  '*.mfaToken',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.SecretAccessKey',
  '*.SessionToken',
  '*.Token',
  '*.credentials',
];

export const REDACTED = '[REDACTED]';

/** The audit logger's own list: exact paths only (cheap), for fields an audit line never has. */
export const AUDIT_REDACT_PATHS: readonly string[] = ['token', 'mfaToken', 'authorization', 'secretAccessKey', 'sessionToken', 'credentials'];

export interface CreateLoggerOptions {
  level?: string;
}

/** A pino logger with vault's redaction, writing JSON to `destination`. */
export function createLogger(destination: DestinationStream, options: CreateLoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    },
    destination,
  );
}

/** A logger that writes nothing (tests, and builds without a log file). */
export function silentLogger(): Logger {
  return pino({ level: 'silent', redact: { paths: [...REDACT_PATHS], censor: REDACTED } });
}

/**
 * The daemon's log file, created 0600 before pino opens it (a log holds client pids and profile
 * names; no secrets, but nobody else's business either). Writes are asynchronous and batched
 * (4 KiB or once a second, whichever comes first) so an audit line per request costs neither a
 * blocked response nor a write(2) each; `close()` flushes what is left.
 */
export function openLogFile(path: string): { logger: Logger; close: () => void } {
  closeSync(openSync(path, 'a', 0o600));
  chmodSync(path, 0o600);
  const destination = pino.destination({ dest: path, sync: false, mkdir: false, mode: 0o600, minLength: 4096, periodicFlush: 1000 });
  const close = () => {
    try {
      destination.flushSync();
    } catch {
      // not open yet, or already closed: nothing buffered is lost by the end() below
    }
    destination.end();
  };
  return { logger: createLogger(destination), close };
}

export type CredentialRoute = 'ecs' | 'ecs-role' | 'imds' | 'control-export' | 'control-resolve';

/**
 * The audit trail: a line for every credential served (session, route, client address and port,
 * and the client's pid where the OS can tell) and for every session start, stop and renew.
 */
export class AuditLog {
  readonly pids: PeerPidResolver;
  /**
   * Audit lines are built here from ids, names and addresses only, so they go through a child
   * logger with a short list of exact redact paths instead of the daemon's wildcard list.
   */
  private readonly auditLogger: Logger;
  /**
   * One line per credential served must cost next to nothing (the credential route is
   * benchmarked against bare node:http), so everything but the time and message is bound into a
   * pino child once per connection, session and route: a keep-alive client's later requests
   * each write a pre-serialized line.
   */
  private readonly byConnection = new WeakMap<object, Map<string, Logger>>();

  constructor(
    readonly logger: Logger,
    pids: PeerPidResolver | boolean = true,
  ) {
    this.pids = pids === true ? defaultPeerPidResolver() : pids === false ? noPeerPid : pids;
    this.auditLogger = logger.child({}, { redact: { paths: [...AUDIT_REDACT_PATHS], censor: REDACTED } });
  }

  /**
   * Called after the response is sent. The pid lookup started when the connection was accepted;
   * once it has settled the line is written at once, before that when it settles, so the
   * response never waits on /proc.
   */
  credentialsServed(socket: PeerSocket, session: Session, route: CredentialRoute, roleArn?: string): void {
    const key = roleArn === undefined ? `${session.id} ${route}` : `${session.id} ${route} ${roleArn}`;
    let children = this.byConnection.get(socket);
    const cached = children?.get(key);
    if (cached) {
      cached.info(SERVED);
      return;
    }
    const bind = (pid: number | undefined): Logger => {
      const client = pid === undefined ? { address: socket.remoteAddress, port: socket.remotePort } : { address: socket.remoteAddress, port: socket.remotePort, pid };
      const child = this.auditLogger.child({
        audit: 'credentials-served',
        session: session.id,
        profile: session.profile,
        route,
        ...(roleArn === undefined ? {} : { roleArn }),
        client,
      });
      if (!children) {
        children = new Map();
        this.byConnection.set(socket, children);
      }
      children.set(key, child);
      return child;
    };
    if (this.pids === noPeerPid || socket.remotePort === undefined) {
      bind(undefined).info(SERVED);
      return;
    }
    const settled = this.pids.settled?.(socket);
    if (settled !== undefined) {
      bind(settled.pid).info(SERVED);
      return;
    }
    const time = Date.now();
    this.pids.lookup(socket).then(
      (pid) => (children?.get(key) ?? bind(pid)).info({ servedAt: new Date(time).toISOString() }, SERVED),
      () => (children?.get(key) ?? bind(undefined)).info(SERVED),
    );
  }

  /** credential_process answers over the control socket (no TCP peer to name). */
  credentialsExported(session: Session): void {
    this.auditLogger.info({ audit: 'credentials-served', session: session.id, profile: session.profile, route: 'control-export' }, SERVED);
    this.logger.flush();
  }

  /** A command's credentials resolved by the daemon's chain (`POST /credentials`). */
  credentialsResolved(profile: string): void {
    this.auditLogger.info({ audit: 'credentials-served', profile, route: 'control-resolve' }, SERVED);
    // One per command, not per SDK request: cheap to write out at once, like session events.
    this.logger.flush();
  }

  session(event: 'start' | 'stop' | 'renew', session: Session, extra: Record<string, unknown> = {}): void {
    this.auditLogger.info(
      { audit: `session-${event}`, session: session.id, profile: session.profile, kind: session.kind, lazy: session.lazy, ...extra },
      `session ${event}`,
    );
    // Session events are rare and are the audit trail's backbone: write them out now rather than
    // with the next batch, so a crash right after cannot lose them.
    this.logger.flush();
  }
}

const SERVED = 'credentials served';
