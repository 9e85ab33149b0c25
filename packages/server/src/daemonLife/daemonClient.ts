// The control API's client: node:http over the daemon's Unix socket, and the two questions about
// the daemon's life only a request can answer (does one answer; stop it and wait until it has).
import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { VAULT_ERROR_CODES, VaultError, type TemporaryCredentials, type VaultErrorCode } from '@vault/core';
import { daemonPaths, defaultStateDir } from '../paths.js';
import { isProcessAlive, readPidFile } from '../processes.js';
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
} from '../control/types.js';

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
