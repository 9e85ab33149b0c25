import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { VAULT_ERROR_CODES, VaultError, type TemporaryCredentials, type VaultErrorCode } from '@vault/core';
import { daemonPaths, defaultStateDir } from './paths.js';
import { isProcessAlive, readPidFile } from './processes.js';

// The CLI loads this module alone (`@vault/server/client`) so that talking to the daemon never
// loads fastify; it needs the paths too.
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
export type * from './control/types.js';
export { isProcessAlive, readPidFile } from './processes.js';
// Whether IMDS listeners can refuse other users here (the CLI notes when they cannot).
export { canTellPeerUids } from './peerUid.js';
// The session store is light too: a daemon starts reading its sessions before it loads fastify.
/** What the daemon asks of cached credentials it hands out as they are; the CLI asks the same before starting a session. */
export { UPSTREAM_MIN_LIFE_MS } from './sessions/refreshingCredentials.js';
export { KeyringSessionStore, storeScope, type SessionRecord, type SessionStore, type SessionLoadResult } from './sessions/sessionStore.js';
export { withMovedRecords } from './sessions/movedSessionStore.js';
import type {
  CreatedSession,
  CreateSessionBody,
  DaemonStatus,
  ProfileCredentialsResponse,
  ResolveCredentialsBody,
  ResolvedCredentialsResponse,
  SessionEnvResponse,
  SessionListResponse,
  SessionSummary,
  StoppedSessionsResponse,
} from './control/types.js';

export interface DaemonClientOptions {
  /** The daemon's state directory (default `$VAULT_STATE_DIR`, `$XDG_RUNTIME_DIR/vault` or `~/.vault/daemon`). */
  stateDir?: string;
  /** The control socket; defaults to the state directory's. */
  socketPath?: string;
  /** Per request. Session creation may include an STS call, so the default is generous. */
  timeoutMs?: number;
}

/**
 * How long a stopping daemon may take: it stops its sessions, saves the (now empty) set to the
 * keyring, waits up to 2 s for audit lines still waiting on a pid lookup, and writes out its log.
 */
const SHUTDOWN_TIMEOUT_MS = 15_000;

/** Error codes a connection attempt gives when no daemon is behind the socket. */
const NOT_RUNNING = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK', 'ECONNRESET', 'EPIPE']);

/** A code the daemon sends back is kept when the CLI knows it (the daemon may be another version). */
const KNOWN_CODES: ReadonlySet<string> = new Set(VAULT_ERROR_CODES);

/**
 * The CLI's side of the control API: node:http over the daemon's Unix socket. Every method
 * resolves with the typed body or throws a VaultError — DAEMON_UNAVAILABLE when nothing answers,
 * otherwise the code the daemon sent.
 */
export class DaemonClient {
  readonly socketPath: string;
  readonly logFile: string;
  private readonly pidFile: string;
  private readonly timeoutMs: number;

  constructor(options: DaemonClientOptions = {}) {
    const paths = daemonPaths(options.stateDir ?? defaultStateDir());
    this.socketPath = options.socketPath ?? paths.socket;
    this.logFile = paths.logFile;
    this.pidFile = paths.pidFile;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Whether a daemon answers on the socket (within 1 s). */
  async isRunning(): Promise<boolean> {
    try {
      await this.request('GET', '/status', undefined, 1_000);
      return true;
    } catch {
      return false;
    }
  }

  status(): Promise<DaemonStatus> {
    return this.request('GET', '/status');
  }

  createSession(body: CreateSessionBody): Promise<CreatedSession> {
    return this.request('POST', '/sessions', body);
  }

  async listSessions(): Promise<SessionSummary[]> {
    return (await this.request<SessionListResponse>('GET', '/sessions')).sessions;
  }

  getSession(id: string): Promise<SessionSummary> {
    return this.request('GET', `/sessions/${encodeURIComponent(id)}`);
  }

  /** The token and variables of a session (only the socket's owner can ask). */
  sessionEnv(id: string): Promise<SessionEnvResponse> {
    return this.request('GET', `/sessions/${encodeURIComponent(id)}/env`);
  }

  async stopSession(id: string): Promise<void> {
    await this.request<StoppedSessionsResponse>('DELETE', `/sessions/${encodeURIComponent(id)}`);
  }

  async stopAllSessions(): Promise<string[]> {
    return (await this.request<StoppedSessionsResponse>('DELETE', '/sessions')).stopped;
  }

  /** With a code: a new MFA session; without: retry the upstream call now. */
  renewSession(id: string, mfaToken?: string): Promise<SessionSummary> {
    return this.request('POST', `/sessions/${encodeURIComponent(id)}/renew`, mfaToken === undefined ? {} : { mfaToken });
  }

  /**
   * Asks the daemon to stop and returns once it has: its socket and pid file are gone and, when it
   * is another process, that process has ended (a `vault server stop` that printed "stopped" while
   * the daemon was still forgetting its sessions let the next `server start` find it running).
   * Fails with DAEMON_UNAVAILABLE, naming the pid, if that takes longer than `stopTimeoutMs`.
   */
  async shutdown(stopTimeoutMs = SHUTDOWN_TIMEOUT_MS): Promise<void> {
    const pid = readPidFile(this.pidFile);
    await this.request('POST', '/shutdown', {});
    const stopped = () => !existsSync(this.socketPath) && readPidFile(this.pidFile) !== pid && (pid === undefined || pid === process.pid || !isProcessAlive(pid));
    const deadline = Date.now() + stopTimeoutMs;
    while (!stopped()) {
      if (Date.now() >= deadline) {
        throw new VaultError('DAEMON_UNAVAILABLE', `the vault daemon${pid === undefined ? '' : ` (pid ${pid})`} did not stop within ${Math.round(stopTimeoutMs / 1000)} s`, {
          hint: `see its log at ${this.logFile}${pid === undefined ? '' : `; \`kill ${pid}\` ends it`}`,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /**
   * Credentials of a live session for `profile` (credential_process), from the session's cache;
   * undefined when the daemon has no session for it.
   */
  async credentialsForProfile(profile: string): Promise<(TemporaryCredentials & { sessionId: string; region?: string }) | undefined> {
    let body: ProfileCredentialsResponse;
    try {
      body = await this.request('GET', `/sessions/by-profile/${encodeURIComponent(profile)}/credentials`);
    } catch (error) {
      if (error instanceof VaultError && error.code === 'SESSION_NOT_FOUND') return undefined;
      throw error;
    }
    return {
      sessionId: body.sessionId,
      ...(body.region ? { region: body.region } : {}),
      accessKeyId: body.accessKeyId,
      secretAccessKey: body.secretAccessKey,
      sessionToken: body.sessionToken,
      expiration: new Date(body.expiration),
    };
  }

  /** A profile's credentials resolved by the daemon (`POST /credentials`); see credentialsRoute. */
  resolveCredentials(body: ResolveCredentialsBody): Promise<ResolvedCredentialsResponse> {
    return this.request('POST', '/credentials', body);
  }

  request<T>(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
      const req = httpRequest(
        {
          socketPath: this.socketPath,
          path,
          method,
          headers: {
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error) => reject(this.unavailable(error)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text.length > 0 ? JSON.parse(text) : undefined;
            } catch {
              reject(new VaultError('INTERNAL', `the vault daemon sent a malformed answer (HTTP ${res.statusCode})`));
              return;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              resolve(parsed as T);
              return;
            }
            reject(toVaultError(parsed, status));
          });
        },
      );
      req.setTimeout(timeoutMs, () => {
        req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
      });
      req.on('error', (error: NodeJS.ErrnoException) => reject(this.unavailable(error)));
      req.end(payload);
    });
  }

  private unavailable(error: NodeJS.ErrnoException): VaultError {
    if (error.code === 'ETIMEDOUT') {
      return new VaultError('DAEMON_UNAVAILABLE', `the vault daemon did not answer on ${this.socketPath} in time`, {
        hint: `see its log at ${this.logFile}, or restart it with \`vault server stop\` and \`vault server start\``,
        cause: error,
      });
    }
    const reason = error.code && NOT_RUNNING.has(error.code) ? 'is not running' : `cannot be reached (${error.code ?? error.message})`;
    return new VaultError('DAEMON_UNAVAILABLE', `the vault daemon ${reason} (socket ${this.socketPath})`, {
      hint: 'start it with `vault server start`',
      cause: error,
    });
  }
}

function toVaultError(body: unknown, status: number): VaultError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { Code?: unknown; Message?: unknown; Hint?: unknown };
  const code = typeof b.Code === 'string' && KNOWN_CODES.has(b.Code) ? (b.Code as VaultErrorCode) : status === 404 ? 'SESSION_NOT_FOUND' : 'INTERNAL';
  const message = typeof b.Message === 'string' ? b.Message : `the vault daemon answered HTTP ${status}`;
  return new VaultError(code, message, typeof b.Hint === 'string' ? { hint: b.Hint } : {});
}

/** Whether the pid file names a live process other than `spawned` (a daemon another command started). */
function otherDaemonStarting(stateDir: string, spawned: number | undefined): boolean {
  const pid = readPidFile(daemonPaths(stateDir).pidFile);
  return pid !== undefined && pid !== spawned && isProcessAlive(pid);
}

export interface EnsureDaemonOptions {
  stateDir?: string;
  /** Starts a daemon in the background (the CLI spawns `vault server run` detached). */
  spawn: () => ChildProcess | void;
  /** How long to wait for the socket to answer. */
  timeoutMs?: number;
  pollIntervalMs?: number;
}

export interface EnsureDaemonResult {
  client: DaemonClient;
  /** Whether this call started it. */
  started: boolean;
}

/**
 * A daemon that answers: the running one, or one started through `spawn` and polled for until it
 * answers (5 s by default). Fails with DAEMON_UNAVAILABLE naming the daemon's log.
 */
export async function ensureDaemon(options: EnsureDaemonOptions): Promise<EnsureDaemonResult> {
  const stateDir = options.stateDir ?? defaultStateDir();
  const client = new DaemonClient({ stateDir });
  if (await client.isRunning()) return { client, started: false };

  const child = options.spawn();
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child?.once('exit', (code, signal) => {
    exit = { code, signal };
  });
  child?.once('error', () => {
    exit ??= { code: null, signal: null };
  });

  const timeoutMs = options.timeoutMs ?? 5_000;
  const interval = options.pollIntervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await client.isRunning()) return { client, started: true };
    // A spawned daemon that exits may have lost a race to another one that now answers;
    // the isRunning check above runs once more before giving up. After a crash several commands
    // may start one at once: while another daemon's pid file is fresh, wait for that one.
    if (Date.now() >= deadline) break;
    if (exit !== undefined && !otherDaemonStarting(stateDir, child?.pid)) break;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  if (exit !== undefined && (await client.isRunning())) return { client, started: false };
  const logFile = daemonPaths(stateDir).logFile;
  const why =
    exit !== undefined
      ? `the vault daemon exited before it answered (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code ?? 'unknown'}`})`
      : `the vault daemon did not answer within ${Math.round(timeoutMs / 1000)} s`;
  throw new VaultError('DAEMON_UNAVAILABLE', why, { hint: `see its log at ${logFile}` });
}
