import type { FastifyInstance } from 'fastify';
import { systemClock, type Clock } from '@vault/core';
import { buildServer } from '../buildServer.js';
import { buildControlServer } from '../control/controlServer.js';
import type { CredentialSourceFactory } from '../credentialSource.js';
import type { Logger } from '../logging.js';
import { checkedStateLocation, daemonPaths, type DaemonPaths } from '../paths.js';
import type { PeerPidResolver } from '../peerPid.js';
import { listenOnPrivateSocket } from '../privateSocket.js';
import { openRelaySocket } from '../relay/relaySocket.js';
import type { BackoffPolicy } from '../sessions/refreshingCredentials.js';
import { credentialPortOf, type LoadedForRestore } from '../sessions/restore.js';
import { systemScheduler, type Scheduler } from '../sessions/scheduler.js';
import type { Session, SessionOwnerInfo } from '../sessions/session.js';
import { SessionRegistry } from '../sessions/sessionRegistry.js';
import type { SessionStore } from '../sessions/sessionStore.js';
import { SERVER_VERSION } from '../version.js';
import { openDaemonLog } from './daemonLog.js';
import { ImdsListeners, listenForCredentials } from './listeners.js';
import { isOwnerAlive, OWNER_CHECK_MS, startOrphanReaper } from '../sessions/orphanReaping.js';
import { checkRestored, reportRestore, restoreSessions, startRestoreLoad, type RestoreSummary } from './restoreAtStart.js';
import { abandonStart, stopDaemonParts, type DaemonParts } from './shutdown.js';
import { stopOnSignals } from './signals.js';
import { checkSocketPath, claimStateDirectory } from './stateDirectory.js';

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

/**
 * Starts the daemon: claims the state directory (stateDirectory.ts), restores the sessions a
 * killed daemon left (restoreAtStart.ts), listens on 127.0.0.1 (credential routes, listeners.ts)
 * and on the Unix socket (control API), writes daemon.json, and stops cleanly (shutdown.ts) on
 * SIGTERM, SIGINT and `POST /shutdown`. The only place that listens.
 */
export async function startDaemon(options: StartDaemonOptions): Promise<Daemon> {
  // Without an explicit directory: VAULT_STATE_DIR, XDG_RUNTIME_DIR or HOME, refused when unsafe.
  const paths = daemonPaths(options.stateDir ?? checkedStateLocation().dir);
  checkSocketPath(paths);
  const startMs = Date.now();
  const claim = await claimStateDirectory(paths, options.startupGraceMs ?? 10_000);

  const clock = options.clock ?? systemClock;
  const log = openDaemonLog(paths.logFile, options.logger, options.peerPids ?? true);
  const { logger, audit } = log;
  if (claim.stalePid !== undefined && claim.stalePid !== process.pid) {
    logger.warn({ event: 'stale-daemon-files', pid: claim.stalePid }, 'removed the pid file and socket of a daemon that did not stop cleanly (crashed or killed)');
  }

  const imds = new ImdsListeners({ audit, clock });
  let port = 0;
  const registry = new SessionRegistry({
    sourceFactory: options.sourceFactory,
    clock,
    scheduler: options.scheduler ?? systemScheduler(clock),
    ...(options.random ? { random: options.random } : {}),
    ...(options.backoff ? { backoff: options.backoff } : {}),
    logger,
    audit,
    openImdsListener: imds.listen,
    ...(options.sessionStore ? { store: options.sessionStore, credentialPort: () => port } : {}),
  });

  // Read before listening, since the restored URIs name the port. Started now, so that the
  // keyring's key derivations (off the event loop) overlap with compiling the routes below.
  const ownerAlive = options.ownerAlive ?? isOwnerAlive;
  const load = startRestoreLoad(options.sessionStore, ownerAlive, logger);

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
  const parts: DaemonParts = { registry, imds, server, control, claim, log };

  let loaded: LoadedForRestore | undefined;
  let restored: Session[] = [];
  try {
    await Promise.all([server.ready(), control.ready()]);
    loaded = await load.loading;
    const wantedPort = options.port ?? (loaded ? credentialPortOf(loaded.records) : undefined);
    port = wantedPort ?? 0;
    restored = await restoreSessions(registry, loaded, wantedPort ?? 0);
    port = await listenForCredentials(server, { wanted: wantedPort, explicit: options.port !== undefined, restored, registry, logger });
    await listenOnPrivateSocket(control, paths.socket);
    claim.socketBound();
    parts.relay = await openRelaySocket(paths.relaySocket, { sessions: registry, audit, logger });
    claim.writeStateFile({ pid: process.pid, port, socket: paths.socket, startedAt: new Date(startedAt).toISOString(), version: SERVER_VERSION });
  } catch (error) {
    await abandonStart(parts, error);
    throw error;
  }

  const removeSignalHandlers = (options.handleSignals ?? true) ? stopOnSignals((signal) => void daemon.stop(signal)) : () => undefined;
  const restore = options.sessionStore ? reportRestore(load, loaded, restored, startMs, logger) : undefined;
  const restoreChecked = checkRestored(registry, restored, restore);
  const stopReaper = startOrphanReaper(registry, ownerAlive, options.ownerCheckMs ?? OWNER_CHECK_MS, logger);

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
        removeSignalHandlers();
        stopReaper();
        await stopDaemonParts(parts, reason);
        resolveClosed();
      })();
      return stopping;
    },
  };

  logger.info({ event: 'daemon-start', pid: process.pid, port, socket: paths.socket, version: SERVER_VERSION }, 'daemon started');
  return daemon;
}
