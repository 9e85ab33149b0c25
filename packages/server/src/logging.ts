import { chmodSync, closeSync, openSync } from 'node:fs';
import { REDACT_PATHS, REDACTED } from '@vault/core';
import { pino, type DestinationStream, type Logger } from 'pino';
import { defaultPeerPidResolver, noPeerPid, type PeerPidResolver, type PeerSocket } from './peerPid.js';
import type { Session } from './sessions/session.js';

/**
 * The daemon logs through pino itself (fastify and the audit trail need its child loggers, level
 * checks and flush); it is a core Logger too, so core's chain logs through it. The redaction list
 * is core's REDACT_PATHS, the one the CLI's --debug log uses.
 */
export type { Logger } from 'pino';

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
export function openLogFile(path: string): { logger: Logger; stream: LineStream; close: () => Promise<void> } {
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
  return { logger: createLogger(destination), stream: destination, close };
}

/** Where log lines go: the destination a logger from createLogger writes to. */
export interface LineStream {
  write(line: string): unknown;
}

/** Per audit-line kind of one connection: when each request was served, and how to bind its line once the pid is known. */
type WaitingLines = Map<string, { times: number[]; bind: (pid: number | undefined) => Served }>;

/** Writes one audit line of a connection's kind; `servedAt` when it is written after the fact. */
type Served = (servedAt?: string) => void;

/** `…-relay`: served on the relay socket, to a container through `vault relay`. */
export type CredentialRoute = 'ecs' | 'ecs-role' | 'ecs-relay' | 'ecs-role-relay' | 'imds' | 'control-export' | 'control-resolve';

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
  private readonly byConnection = new WeakMap<object, Map<string, Served>>();
  /**
   * The stream the logger writes to, when the caller handed it over (openLogFile's) and info lines
   * are enabled: served lines are then written to it directly, in the shape pino writes (the
   * logger comes from createLogger, whose only base field is the pid). Without it they go through
   * a child logger — the same line, at pino's cost.
   */
  private readonly stream: LineStream | undefined;
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
    stream?: LineStream,
  ) {
    this.pids = pids === true ? defaultPeerPidResolver() : pids === false ? noPeerPid : pids;
    this.auditLogger = logger.child({}, { redact: { paths: [...AUDIT_REDACT_PATHS], censor: REDACTED } });
    this.stream = stream !== undefined && logger.isLevelEnabled('info') ? stream : undefined;
  }

  /**
   * How a served line of these bindings is written. Fast path: `{"level":30,"time":…` + the
   * bindings serialized once here, as pino serializes a child's (`,"key":JSON` each, after the
   * base pid) — ids, names, addresses and pids only, nothing the redact paths would censor.
   * packages/server/src/auditLine.test.ts compares the two byte for byte, so a pino that changed
   * its line would fail there.
   */
  private served(bindings: Record<string, unknown>): Served {
    const stream = this.stream;
    if (stream === undefined) {
      const child = this.auditLogger.child(bindings);
      return (servedAt) => (servedAt === undefined ? child.info(SERVED) : child.info({ servedAt }, SERVED));
    }
    let bound = `,"pid":${process.pid}`;
    for (const [key, value] of Object.entries(bindings)) bound += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
    const line = `${bound},"msg":${SERVED_JSON}}\n`;
    return (servedAt) =>
      stream.write(servedAt === undefined ? `{"level":30,"time":${Date.now()}${line}` : `{"level":30,"time":${Date.now()}${bound},"servedAt":${JSON.stringify(servedAt)},"msg":${SERVED_JSON}}\n`);
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
      cached();
      return;
    }
    const bind = (pid: number | undefined): Served => {
      const client = pid === undefined ? { address: socket.remoteAddress, port: socket.remotePort } : { address: socket.remoteAddress, port: socket.remotePort, pid };
      const served = this.served({
        audit: 'credentials-served',
        session: session.id,
        profile: session.profile,
        route,
        ...(roleArn === undefined ? {} : { roleArn }),
        client,
      });
      children = this.byConnection.get(socket);
      if (!children) {
        children = new Map();
        this.byConnection.set(socket, children);
      }
      children.set(key, served);
      return served;
    };
    if (this.pids === noPeerPid || socket.remotePort === undefined) {
      bind(undefined)();
      return;
    }
    const settled = this.pids.settled?.(socket);
    if (settled !== undefined) {
      bind(settled.pid)();
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
      const served = this.byConnection.get(socket)?.get(key) ?? bind(pid);
      for (const time of times) served(new Date(time).toISOString());
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
const SERVED_JSON = JSON.stringify(SERVED);
