import { chmodSync, closeSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { isVaultError, systemClock, VaultError, type Clock } from '@vault/core';
import { buildImdsServer, buildServer } from './buildServer.js';
import { DaemonClient } from './daemonLife/daemonClient.js';
import { buildControlServer } from './control/controlServer.js';
import type { CredentialSourceFactory } from './credentialSource.js';
import { AuditLog, openLogFile, type LineStream, type Logger } from './logging.js';
import type { PeerPidResolver } from './peerPid.js';
import type { BackoffPolicy } from './sessions/refreshingCredentials.js';
import { systemScheduler, type Scheduler } from './sessions/scheduler.js';
import { SessionRegistry } from './sessions/sessionRegistry.js';
import type { ImdsListener, Session, SessionOwnerInfo } from './sessions/session.js';
import { isProcessAlive, readPidFile } from './processes.js';
import { credentialPortOf, isOwnerAlive, loadForRestore, type LoadedForRestore } from './sessions/restore.js';
import type { SessionStore } from './sessions/sessionStore.js';
import { listenOnLoopback } from './listenPort.js';
import { SERVER_VERSION } from './version.js';
import { checkedStateLocation, daemonPaths, type DaemonPaths } from './paths.js';
import { listenOnPrivateSocket } from './privateSocket.js';
import { openRelaySocket, type RelaySocket } from './relay/relaySocket.js';

/** How often the daemon looks for sessions whose `vault exec --server` has ended. */
export const OWNER_CHECK_MS = 10_000;

export {
  checkedStateLocation,
  checkStateLocation,
  daemonPaths,
  defaultStateDir,
  homeStateDir,
  stateDirInUse,
  stateLocation,
  type DaemonPaths,
  type StateDirSource,
  type StateLocation,
} from './paths.js';

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
  /**
   * Where sessions are recorded (the keyring) so that a daemon started after a crash brings them
   * back with the same ids, tokens and ports. Without it sessions live in memory only.
   */
  sessionStore?: SessionStore;
  /** Whether the owner of an `exec --server` session still runs (default: pid and /proc start time). */
  ownerAlive?: (owner: SessionOwnerInfo) => boolean;
  /** How often to look for sessions whose owner has ended (default OWNER_CHECK_MS). */
  ownerCheckMs?: number;
}

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
  /** What was restored at start (undefined without a session store). */
  readonly restore: RestoreSummary | undefined;
  /** Resolves once restored sessions have been checked (fetched, or their MFA session looked up). */
  readonly restoreChecked: Promise<void>;
}

/** Unix socket paths are limited to 108 bytes on Linux (104 on macOS). */
const MAX_SOCKET_PATH = 103;

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Removes the pid file only while it still names `pid`: never another daemon's fresh claim. */
function removePidFileOf(pidFile: string, pid: number): void {
  if (readPidFile(pidFile) === pid) removeQuietly(pidFile);
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
 * grace has passed, is stale and removed. The stale socket and daemon.json are removed by the
 * caller once it holds the pid file, so that two daemons started at once after a crash cannot
 * remove each other's files.
 */
async function claimStateDir(paths: DaemonPaths, graceMs: number): Promise<number | undefined> {
  const client = new DaemonClient({ socketPath: paths.socket, timeoutMs: 1_000 });
  const status = await client.status().catch(() => undefined);
  if (status) {
    throw new VaultError('USAGE', `a vault daemon is already running (pid ${status.pid}, port ${status.port})`, {
      hint: 'stop it with `vault server stop`, or use it as it is',
    });
  }
  const pid = readPidFile(paths.pidFile);
  if (pid !== undefined && pid !== process.pid && isProcessAlive(pid)) {
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
  if (pid !== undefined) removePidFileOf(paths.pidFile, pid);
  return pid;
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
  // Without an explicit directory: VAULT_STATE_DIR, XDG_RUNTIME_DIR or HOME, refused when unsafe.
  const paths = daemonPaths(options.stateDir ?? checkedStateLocation().dir);
  if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH) {
    throw new VaultError('USAGE', `the daemon socket path is too long for a Unix socket: ${paths.socket}`, {
      hint: 'set VAULT_STATE_DIR to a shorter directory',
    });
  }
  const startMs = Date.now();
  prepareStateDir(paths.stateDir);
  const stalePid = await claimStateDir(paths, options.startupGraceMs ?? 10_000);
  // Claim the pid file before anything listens, so a second daemon starting now sees us.
  try {
    writePrivateFile(paths.pidFile, `${process.pid}\n`, true);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new VaultError('USAGE', 'another vault daemon is starting in the same state directory', { hint: 'wait a moment and try again' });
    }
    throw error;
  }
  // Ours now: a socket or daemon.json still here was left by a daemon that did not stop cleanly.
  removeQuietly(paths.socket);
  removeQuietly(paths.stateFile);

  const clock = options.clock ?? systemClock;
  let closeLog: (() => Promise<void>) | undefined;
  let logStream: LineStream | undefined;
  let logger = options.logger;
  if (!logger) {
    const opened = openLogFile(paths.logFile);
    logger = opened.logger;
    closeLog = opened.close;
    logStream = opened.stream;
  }
  const audit = new AuditLog(logger, options.peerPids ?? true, logStream);
  if (stalePid !== undefined && stalePid !== process.pid) {
    logger.warn({ event: 'stale-daemon-files', pid: stalePid }, 'removed the pid file and socket of a daemon that did not stop cleanly (crashed or killed)');
  }

  const imdsListeners = new Set<FastifyInstance>();
  const openImdsListener = async (session: Session, wanted?: number): Promise<ImdsListener> => {
    let imdsPort = 0;
    const app = buildImdsServer(session, { port: () => imdsPort, audit, clock });
    try {
      imdsPort = await listenOnLoopback(app, wanted);
    } catch (error) {
      await app.close().catch(() => undefined);
      throw error;
    }
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
    ...(options.sessionStore ? { store: options.sessionStore, credentialPort: () => port } : {}),
  });

  // Sessions a killed daemon left in the store: read before listening, since their URIs name the
  // port. Started now, so that the keyring's key derivations (off the event loop) overlap with
  // compiling the routes below.
  let restoreError: string | undefined;
  let loadMs = 0;
  const loadStart = Date.now();
  const loading: Promise<LoadedForRestore | undefined> = options.sessionStore
    ? loadForRestore(options.sessionStore, options.ownerAlive ?? isOwnerAlive).finally(() => (loadMs = Date.now() - loadStart)).catch((error: unknown) => {
        // The records stay in the keyring: a later start that can read it restores them.
        restoreError = isVaultError(error) ? error.message : 'the keyring could not be read';
        logger.error({ event: 'restore-failed', code: isVaultError(error) ? error.code : 'INTERNAL', message: restoreError }, 'sessions could not be restored');
        return undefined;
      })
    : Promise.resolve(undefined);

  let port = 0;
  let wantedPort: number | undefined;
  let loaded: LoadedForRestore | undefined;
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
  let socketBound = false;
  const cleanupFiles = () => {
    // Only what is ours: a failed start must not remove a daemon's that won a race with it.
    if (socketBound) removeQuietly(paths.socket);
    removePidFileOf(paths.pidFile, process.pid);
    if (socketBound) removeQuietly(paths.stateFile);
  };

  let restore: RestoreSummary | undefined;
  const restored: Session[] = [];
  // Containers' way in, through `vault relay` (relay/relaySocket.ts); never the control API.
  let relay: RelaySocket | undefined;
  try {
    await Promise.all([server.ready(), control.ready()]);
    loaded = await loading;
    wantedPort = options.port ?? (loaded ? credentialPortOf(loaded.records) : undefined);
    port = wantedPort ?? 0;
    // Restored sessions are registered before anything listens: a client's first request after
    // the restart finds its session, with the credentials it was being served.
    for (const record of loaded?.records ?? []) restored.push(await registry.restore(record, wantedPort ?? 0));
    try {
      port = await listenOnLoopback(server, wantedPort);
    } catch (error) {
      if (options.port !== undefined || wantedPort === undefined || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      // Someone took the port while the daemon was down: the container sessions it named fail
      // (their clients' URIs cannot be served) rather than silently moving; new ones get a new port.
      logger.error({ event: 'restore-port-taken', port: wantedPort }, 'the credential port of the restored sessions is taken');
      port = await listenOnLoopback(server);
      for (const session of restored) {
        if (session.kind === 'ecs' && !session.fault) registry.markPortTaken(session, wantedPort, `the credential port ${wantedPort} was taken while the daemon was down`);
      }
    }
    await listenOnPrivateSocket(control, paths.socket);
    socketBound = true;
    relay = await openRelaySocket(paths.relaySocket, { sessions: registry, audit, logger });
    const state: DaemonStateFile = {
      pid: process.pid,
      port,
      socket: paths.socket,
      startedAt: new Date(startedAt).toISOString(),
      version: SERVER_VERSION,
    };
    writePrivateFile(paths.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  } catch (error) {
    // Restored sessions go quiet but keep their records: the next start tries again.
    await registry.release();
    await Promise.allSettled([...imdsListeners].map((app) => app.close()));
    await Promise.allSettled([server.close(), control.close(), relay?.close()]);
    cleanupFiles();
    logger.error({ event: 'daemon-start-failed', message: (error as Error).message }, 'daemon could not start');
    await closeLog?.();
    throw error;
  }

  if (options.handleSignals ?? true) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  if (options.sessionStore) {
    restore = {
      restored: restored.map((s) => s.id),
      failed: restored.filter((s) => s.fault).map((s) => s.id),
      dropped: loaded?.dropped.map((r) => r.id) ?? [],
      skipped: loaded?.skipped ?? [],
      ...(restoreError === undefined ? {} : { error: restoreError }),
      ms: Date.now() - startMs,
      loadMs,
    };
    for (const skipped of restore.skipped) logger.warn({ event: 'restore-skipped', session: skipped.id, reason: skipped.reason }, 'a session record could not be restored');
    for (const record of loaded?.dropped ?? []) {
      logger.info({ event: 'restore-dropped', session: record.id, profile: record.profile, ownerPid: record.owner?.pid }, 'session forgotten: the vault exec that owned it has ended');
    }
    if (restored.length > 0 || restore.dropped.length > 0 || restore.skipped.length > 0) {
      logger.info({ event: 'sessions-restored', ...restore, skipped: restore.skipped.length }, 'sessions restored');
    }
  }
  // Off the start path: a fetch for sessions with nothing servable, an MFA check for the others;
  // and the store rewritten without what could not be restored.
  const restoreChecked = Promise.all([
    ...restored.map((session) => registry.verifyRestored(session)),
    restore && (restore.dropped.length > 0 || restore.skipped.length > 0) ? registry.persist() : undefined,
  ]).then(() => undefined);

  // Sessions whose `vault exec --server` ended without stopping them are stopped within
  // OWNER_CHECK_MS (a kill(pid, 0) and a /proc read per such session). A real interval, not the
  // injected scheduler: whether a process lives is wall-clock business, and tests that step the
  // scheduler through refreshes must not meet it.
  const ownerCheck = setInterval(() => {
    void registry.stopOrphaned(options.ownerAlive ?? isOwnerAlive).then((ids) => {
      if (ids.length > 0) logger.info({ event: 'sessions-orphaned', sessions: ids }, 'sessions stopped: the vault exec that owned them has ended');
    });
  }, options.ownerCheckMs ?? OWNER_CHECK_MS);
  ownerCheck.unref();

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
    restore,
    restoreChecked,
    stop(reason = 'stop requested') {
      stopping ??= (async () => {
        process.removeListener('SIGTERM', onSignal);
        process.removeListener('SIGINT', onSignal);
        logger.info({ event: 'daemon-stop', reason }, 'daemon stopping');
        clearInterval(ownerCheck);
        await registry.stopAll();
        await Promise.allSettled([...imdsListeners].map((app) => app.close()));
        await Promise.allSettled([server.close(), control.close(), relay?.close()]);
        cleanupFiles();
        await audit.drain();
        logger.info({ event: 'daemon-stopped' }, 'daemon stopped');
        await closeLog?.();
        resolveClosed();
      })();
      return stopping;
    },
  };

  logger.info({ event: 'daemon-start', pid: process.pid, port, socket: paths.socket, version: SERVER_VERSION }, 'daemon started');
  return daemon;
}

export { KeyringSessionStore, storeScope, type SessionRecord, type SessionStore, type SessionLoadResult } from './sessions/sessionStore.js';
