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
 * blocked response nor a write(2) each. `close()` resolves once every line is on disk, in order —
 * including a batch whose write was still in flight (a stop reports done only when its audit trail
 * is complete).
 */
export function openLogFile(path: string): { logger: Logger; close: () => Promise<void> } {
  closeSync(openSync(path, 'a', 0o600));
  chmodSync(path, 0o600);
  const destination = pino.destination({ dest: path, sync: false, mkdir: false, mode: 0o600, minLength: 4096, periodicFlush: 1000 });
  let closed: Promise<void> | undefined;
  // end() writes what is buffered after the write in flight, then fsyncs and closes.
  const close = (): Promise<void> =>
    (closed ??= new Promise((resolve) => {
      destination.once('close', () => resolve());
      destination.once('error', () => resolve());
      destination.end();
    }));
  return { logger: createLogger(destination), close };
}

/** Per audit-line kind of one connection: when each request was served, and how to bind its line once the pid is known. */
type WaitingLines = Map<string, { times: number[]; bind: (pid: number | undefined) => string }>;

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
   * benchmarked against bare node:http): everything but the time is serialized by pino once per
   * connection, session and route (a child logger's bindings), and a keep-alive client's later
   * requests each append `{"level":30,"time":…` + that text to the log stream directly.
   */
  private readonly byConnection = new WeakMap<object, Map<string, string>>();
  /** The stream the logger writes to, when info lines are enabled at all. */
  private readonly stream: { write(line: string): unknown } | undefined;
  /**
   * Requests served on a connection whose pid lookup has not finished: per line kind, the times
   * they were served (a number each — under load a new connection serves thousands of requests
   * before its lookup settles, and a promise per request cost more than the request).
   */
  private readonly waiting = new WeakMap<object, WaitingLines>();
  /** Lookups with lines waiting on them; `drain()` lets them land before the log is closed. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    readonly logger: Logger,
    pids: PeerPidResolver | boolean = true,
  ) {
    this.pids = pids === true ? defaultPeerPidResolver() : pids === false ? noPeerPid : pids;
    this.auditLogger = logger.child({}, { redact: { paths: [...AUDIT_REDACT_PATHS], censor: REDACTED } });
    const symbols = pino.symbols as unknown as { streamSym: symbol };
    this.stream = logger.isLevelEnabled('info') ? (logger as unknown as Record<symbol, { write(line: string): unknown }>)[symbols.streamSym] : undefined;
  }

  /** The line pino would write for `child.info(SERVED)`, with the time of now. */
  private writeServed(suffix: string): void {
    this.stream?.write(`{"level":30,"time":${Date.now()}${suffix}`);
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
    if (cached !== undefined) {
      this.writeServed(cached);
      return;
    }
    const bind = (pid: number | undefined): string => {
      const client = pid === undefined ? { address: socket.remoteAddress, port: socket.remotePort } : { address: socket.remoteAddress, port: socket.remotePort, pid };
      const child = this.auditLogger.child({
        audit: 'credentials-served',
        session: session.id,
        profile: session.profile,
        route,
        ...(roleArn === undefined ? {} : { roleArn }),
        client,
      });
      // pino's own serialization of the bindings (`,"pid":…,"audit":…,"client":{…}`), redaction applied.
      const chindings = (child as unknown as Record<symbol, string>)[(pino.symbols as unknown as { chindingsSym: symbol }).chindingsSym];
      const suffix = `${chindings},"msg":${JSON.stringify(SERVED)}}\n`;
      children = this.byConnection.get(socket);
      if (!children) {
        children = new Map();
        this.byConnection.set(socket, children);
      }
      children.set(key, suffix);
      return suffix;
    };
    if (this.pids === noPeerPid || socket.remotePort === undefined) {
      this.writeServed(bind(undefined));
      return;
    }
    const settled = this.pids.settled?.(socket);
    if (settled !== undefined) {
      this.writeServed(bind(settled.pid));
      return;
    }
    // The pid lookup has not finished: note when this was served; the lines are written, saying
    // so, when it has.
    let queued = this.waiting.get(socket);
    if (!queued) {
      const lines: WaitingLines = new Map();
      queued = lines;
      this.waiting.set(socket, lines);
      const written = this.pids.lookup(socket).then(
        (pid) => this.writeWaiting(socket, lines, pid),
        () => this.writeWaiting(socket, lines, undefined),
      );
      this.pending.add(written);
      void written.finally(() => this.pending.delete(written));
    }
    const entry = queued.get(key);
    if (entry) entry.times.push(Date.now());
    else queued.set(key, { times: [Date.now()], bind });
  }

  private writeWaiting(socket: object, lines: WaitingLines, pid: number | undefined): void {
    this.waiting.delete(socket);
    for (const [key, { times, bind }] of lines) {
      const suffix = this.byConnection.get(socket)?.get(key) ?? bind(pid);
      const now = Date.now();
      for (const time of times) this.stream?.write(`{"level":30,"time":${now},"servedAt":"${new Date(time).toISOString()}"${suffix}`);
    }
  }

  /**
   * Waits for the lines still waiting on a pid lookup (a stop must not close the log under them:
   * an audit trail that drops the last requests before a shutdown is no trail). Bounded, so a
   * lookup that never settles cannot hold a stop.
   */
  async drain(maxWaitMs = 2_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const givenUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, maxWaitMs)));
    const settled = (async () => {
      while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    })();
    await Promise.race([settled, givenUp]);
    clearTimeout(timer);
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
