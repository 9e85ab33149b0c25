import type { SessionSourceRequest } from '../credentialSource.js';
import type { SessionKind, SessionState } from '../sessions/session.js';

/**
 * Bodies of the control API (Unix socket, CLI ↔ daemon). Shared by the server and DaemonClient
 * so both sides agree at compile time. Times are ISO strings; durations are seconds.
 */

/** `POST /sessions`. */
export interface CreateSessionBody extends SessionSourceRequest {
  kind: SessionKind;
  /** Defer the first STS call to the first request (`--lazy`). */
  lazy?: boolean;
  /**
   * The `vault exec --server` process the session belongs to: a daemon restarted after a crash
   * drops the session when that process has ended.
   */
  ownerPid?: number;
}

/** `POST /sessions/:id/renew`: a code when the MFA session ran out; without one, retry now. */
export interface RenewSessionBody {
  mfaToken?: string;
}

export interface SessionErrorSummary {
  code: string;
  message: string;
  at: string;
}

/** One row of `vault session ls`: never a token or a secret. */
export interface SessionSummary {
  id: string;
  profile: string;
  kind: SessionKind;
  state: SessionState;
  lazy: boolean;
  /** Made with `--no-session`: a renew's code goes with AssumeRole, even when an MFA session is cached. */
  noSession?: boolean;
  /** The container endpoint, `http://127.0.0.1:PORT/creds/ID`. */
  uri: string;
  /** `http://127.0.0.1:IMDSPORT` for IMDS sessions. */
  imdsEndpoint?: string;
  region?: string;
  createdAt: string;
  requestsServed: number;
  /** The credentials being served (absent before a lazy session's first request). */
  credentialExpiration?: string;
  credentialSecondsLeft?: number;
  /** The MFA-backed session the credentials are refreshed from (absent when the chain has none). */
  mfaExpiration?: string;
  mfaSecondsLeft?: number;
  /** Upstream refreshes that failed since the session started. */
  refreshFailures: number;
  /** When the next retry after a failure is due. */
  nextRetryAt?: string;
  lastError?: SessionErrorSummary;
}

/** The variables that point a program at a session (what `vault session start` prints). */
export type SessionEnvironment = Record<string, string>;

/** `POST /sessions` answer: the summary plus what only the creator may see. */
export interface CreatedSession extends SessionSummary {
  token: string;
  env: SessionEnvironment;
}

/** `GET /sessions/:id/env`: the token and variables of a session the CLI reuses. */
export interface SessionEnvResponse {
  id: string;
  profile: string;
  kind: SessionKind;
  uri: string;
  imdsEndpoint?: string;
  token: string;
  env: SessionEnvironment;
}

export interface SessionListResponse {
  sessions: SessionSummary[];
}

export interface StoppedSessionsResponse {
  stopped: string[];
}

export interface DaemonStatus {
  pid: number;
  /** Port of the credential (container) listener on 127.0.0.1. */
  port: number;
  startedAt: string;
  uptimeSeconds: number;
  sessions: number;
  version: string;
}

/** `POST /credentials`: a command's request for a profile's credentials (see ResolveRequest). */
export interface ResolveCredentialsBody {
  profile: string;
  region?: string;
  durationSeconds?: number;
  noSession?: boolean;
  mfaToken?: string;
  environment: string;
  backend?: string;
  /** Answer from a live session of the profile when there is one (credential_process). */
  preferSession?: boolean;
}

export interface ResolvedCredentialsResponse {
  profile: string;
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** `YYYY-MM-DDTHH:MM:SSZ`. */
  expiration: string;
  /** `session` (a live session's served credentials) or `keyring` (resolved by the daemon's chain). */
  source: 'session' | 'keyring';
  sessionId?: string;
}

/** `GET /sessions/by-profile/:profile/credentials`, for `vault export` (credential_process). */
export interface ProfileCredentialsResponse {
  sessionId: string;
  profile: string;
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** `YYYY-MM-DDTHH:MM:SSZ`. */
  expiration: string;
}
