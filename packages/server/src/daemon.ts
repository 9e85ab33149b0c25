import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { systemClock, VaultError, type Clock } from '@vault/core';
import { buildImdsServer, buildServer, LISTEN_HOST } from './buildServer.js';
import { DaemonClient } from './client.js';
import { buildControlServer } from './control/controlServer.js';
import type { CredentialSourceFactory } from './credentialSource.js';
import { AuditLog, openLogFile, type Logger } from './logging.js';
import type { PeerPidResolver } from './peerPid.js';
import type { BackoffPolicy } from './sessions/refreshingCredentials.js';
import { systemScheduler, type Scheduler } from './sessions/scheduler.js';
import { SessionRegistry } from './sessions/sessionRegistry.js';
import type { ImdsListener, Session } from './sessions/session.js';
import { SERVER_VERSION } from './version.js';
import { daemonPaths, defaultStateDir, type DaemonPaths } from './paths.js';

export { daemonPaths, defaultStateDir, type DaemonPaths } from './paths.js';

/** What `daemon.json` holds. */
export interface DaemonStateFile {
  pid: number;
  port: number;
  socket: string;
  startedAt: string;
  version: string;
}

export interface StartDaemonOptions {
  stateDir?: string;
  sourceFactory: CredentialSourceFactory;
  clock?: Clock;
  /** Refresh timers; defaults to real timers on `clock`. */
  scheduler?: Scheduler;
  random?: () => number;
  backoff?: BackoffPolicy;
  /** Defaults to pino JSON in `daemon.log` (0600), redacted. */
  logger?: Logger;
  /** Credential listener port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Client pid lookup for audit lines (default: on where the OS allows). */
  peerPids?: boolean | PeerPidResolver;
  /** Stop on SIGTERM/SIGINT (default true). */
  handleSignals?: boolean;
  /** A pid file younger than this with a live pid is a daemon still starting, not a stale one. */
  startupGraceMs?: number;
}

export interface Daemon {
  readonly pid: number;
  /** The credential listener's port on 127.0.0.1. */
  readonly port: number;
  readonly paths: DaemonPaths;
  readonly registry: SessionRegistry;
  readonly server: FastifyInstance;
  readonly control: FastifyInstance;
  readonly logger: Logger;
  /** Stops sessions and listeners, removes the socket, pid and state files. Idempotent. */
  stop(reason?: string): Promise<void>;
  /** Resolves once the daemon has stopped (shutdown route, signal, or stop()). */
  readonly closed: Promise<void>;
}

/** Unix socket paths are limited to 108 bytes on Linux (104 on macOS). */
const MAX_SOCKET_PATH = 103;

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** The state directory: created 0700, and refused when someone else owns it. */
export function prepareStateDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const stat = statSync(stateDir);
  if (!stat.isDirectory()) throw new VaultError('USAGE', `${stateDir} is not a directory`);
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
    throw new VaultError('USAGE', `the daemon state directory ${stateDir} belongs to another user`, {
      hint: 'set VAULT_STATE_DIR to a directory of your own',
    });
  }
  if ((stat.mode & 0o777) !== 0o700) chmodSync(stateDir, 0o700);
}

/**
 * Whether the state directory is free for a new daemon. A daemon answering on the socket owns it
 * (refused); a pid file whose process is gone, or whose socket does not answer once the startup
 * grace has passed, is stale and removed with its socket.
 */
async function claimStateDir(paths: DaemonPaths, graceMs: number): Promise<void> {
  const client = new DaemonClient({ socketPath: paths.socket, timeoutMs: 1_000 });
  const status = await client.status().catch(() => undefined);
  if (status) {
    throw new VaultError('USAGE', `a vault daemon is already running (pid ${status.pid}, port ${status.port})`, {
      hint: 'stop it with `vault server stop`, or use it as it is',
    });
  }
  const pid = readPid(paths.pidFile);
  if (pid !== undefined && pid !== process.pid && isAlive(pid)) {
    let age = Number.POSITIVE_INFINITY;
    try {
      age = Date.now() - statSync(paths.pidFile).mtimeMs;
    } catch {
      // vanished meanwhile: treat as stale
    }
    if (age < graceMs) {
      throw new VaultError('USAGE', `a vault daemon is starting (pid ${pid})`, { hint: 'wait a moment and try again' });
    }
  }
  removeQuietly(paths.socket);
  removeQuietly(paths.pidFile);
  removeQuietly(paths.stateFile);
}

function writePrivateFile(path: string, content: string, exclusive = false): void {
  const fd = openSync(path, exclusive ? 'wx' : 'w', 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, 0o600);
}

/**
 * Starts the daemon: claims the state directory, listens on 127.0.0.1 (credential routes) and on
 * the Unix socket (control API), writes the pid and state files, and stops cleanly on SIGTERM,
 * SIGINT and `POST /shutdown`. The only place that listens.
 */
export async function startDaemon(options: StartDaemonOptions): Promise<Daemon> {
  const paths = daemonPaths(options.stateDir ?? defaultStateDir());
  if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH) {
    throw new VaultError('USAGE', `the daemon socket path is too long for a Unix socket: ${paths.socket}`, {
      hint: 'set VAULT_STATE_DIR to a shorter directory',
    });
  }
  prepareStateDir(paths.stateDir);
  await claimStateDir(paths, options.startupGraceMs ?? 10_000);
  // Claim the pid file before anything listens, so a second daemon starting now sees us.
  try {
    writePrivateFile(paths.pidFile, `${process.pid}\n`, true);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new VaultError('USAGE', 'another vault daemon is starting in the same state directory', { hint: 'wait a moment and try again' });
    }
    throw error;
  }

  const clock = options.clock ?? systemClock;
  let closeLog: (() => void) | undefined;
  let logger = options.logger;
  if (!logger) {
    const opened = openLogFile(paths.logFile);
    logger = opened.logger;
    closeLog = opened.close;
  }
  const audit = new AuditLog(logger, options.peerPids ?? true);

  const imdsListeners = new Set<FastifyInstance>();
  const openImdsListener = async (session: Session): Promise<ImdsListener> => {
    let imdsPort = 0;
    const app = buildImdsServer(session, { port: () => imdsPort, audit, clock });
    await app.listen({ host: LISTEN_HOST, port: 0 });
    imdsPort = (app.server.address() as AddressInfo).port;
    imdsListeners.add(app);
    return {
      port: imdsPort,
      close: async () => {
        imdsListeners.delete(app);
        await app.close();
      },
    };
  };

  const registry = new SessionRegistry({
    sourceFactory: options.sourceFactory,
    clock,
    scheduler: options.scheduler ?? systemScheduler(clock),
    ...(options.random ? { random: options.random } : {}),
    ...(options.backoff ? { backoff: options.backoff } : {}),
    logger,
    audit,
    openImdsListener,
  });

  let port = options.port ?? 0;
  const server = buildServer({ sessions: registry, port: () => port, audit });
  let stopping: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const startedAt = clock.now();
  const control = buildControlServer({
    registry,
    port: () => port,
    logger,
    startedAt,
    onShutdown: () => void daemon.stop('shutdown requested'),
  });

  const onSignal = (signal: NodeJS.Signals) => void daemon.stop(signal);
  const cleanupFiles = () => {
    removeQuietly(paths.socket);
    removeQuietly(paths.pidFile);
    removeQuietly(paths.stateFile);
  };

  try {
    await server.listen({ host: LISTEN_HOST, port });
    port = (server.server.address() as AddressInfo).port;
    await control.listen({ path: paths.socket });
    chmodSync(paths.socket, 0o600);
    const state: DaemonStateFile = {
      pid: process.pid,
      port,
      socket: paths.socket,
      startedAt: new Date(startedAt).toISOString(),
      version: SERVER_VERSION,
    };
    writePrivateFile(paths.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  } catch (error) {
    await Promise.allSettled([server.close(), control.close()]);
    cleanupFiles();
    logger.error({ event: 'daemon-start-failed', message: (error as Error).message }, 'daemon could not start');
    closeLog?.();
    throw error;
  }

  if (options.handleSignals ?? true) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  const daemon: Daemon = {
    pid: process.pid,
    get port() {
      return port;
    },
    paths,
    registry,
    server,
    control,
    logger,
    closed,
    stop(reason = 'stop requested') {
      stopping ??= (async () => {
        process.removeListener('SIGTERM', onSignal);
        process.removeListener('SIGINT', onSignal);
        logger.info({ event: 'daemon-stop', reason }, 'daemon stopping');
        await registry.stopAll();
        await Promise.allSettled([...imdsListeners].map((app) => app.close()));
        await Promise.allSettled([server.close(), control.close()]);
        cleanupFiles();
        logger.info({ event: 'daemon-stopped' }, 'daemon stopped');
        closeLog?.();
        resolveClosed();
      })();
      return stopping;
    },
  };

  logger.info({ event: 'daemon-start', pid: process.pid, port, socket: paths.socket, version: SERVER_VERSION }, 'daemon started');
  return daemon;
}
