import type { TemporaryCredentials } from '@vault/core';

/**
 * What the daemon needs from the credential chain, and nothing more. The daemon never prompts:
 * the CLI collects the MFA code (and, for the file backend, the passphrase) and hands them over
 * in the request. The production implementation wraps @vault/core's provider chain; tests use fakes
 * or the STS stand-in.
 */
export interface SessionSourceRequest {
  profile: string;
  /** MFA code collected by the CLI, when the profile needs one and no MFA session is cached. */
  mfaToken?: string;
  /** Role session duration requested with --duration. */
  durationSeconds?: number;
  /** Region override (--region). */
  region?: string;
  /**
   * `--no-session`: no GetSessionToken; the MFA code goes with the first AssumeRole, so every
   * refresh of an MFA profile's credentials needs a new code (`vault session renew`).
   */
  noSession?: boolean;
}

export interface CredentialSource {
  readonly profile: string;
  /** Region the child should use (profile's region or override); may be undefined. */
  readonly region: string | undefined;
  /**
   * Fresh credentials from upstream (AssumeRole over the cached MFA session, …). May call STS,
   * never prompts. Throws VaultError; code SESSION_NEEDS_MFA when the MFA session has run out.
   */
  fetchCredentials(): Promise<TemporaryCredentials>;
  /** Assume another role from this session's base credentials (the ECS `role-arn/<ARN>` route). */
  assumeRole(roleArn: string): Promise<TemporaryCredentials>;
  /** When the MFA-backed session ends; undefined when the chain uses no MFA session. */
  mfaSessionExpiration(): Date | undefined;
  /** Revive an expired MFA session with a fresh code (one GetSessionToken). */
  renew(mfaToken: string): Promise<void>;
  /**
   * Whether the MFA session the source refreshes from still has enough life, judged from the
   * keyring cache without calling STS (undefined: cannot tell). A restored session asks it so that
   * `vault session ls` shows needs-mfa at once instead of at the next refresh.
   */
  mfaSessionUsable?(): Promise<boolean | undefined>;
  /**
   * For a restored session: false when its IAM Identity Center sign-in is gone or past refreshing
   * (no cached token, or an expired one without a usable refresh token); undefined when the chain
   * has no sign-in.
   */
  ssoSignInUsable?(): Promise<boolean | undefined>;
}

export interface CredentialSourceFactory {
  create(request: SessionSourceRequest): Promise<CredentialSource>;
  /**
   * Credentials for a profile resolved as `vault exec` would (cached credentials in the keyring
   * first), for a command that asks the daemon instead of opening the keyring itself: the daemon
   * holds the unlocked keyring, like ssh-agent. Never prompts and never hands out a long-term key.
   */
  resolve?(request: ResolveRequest): Promise<ResolvedCredentials>;
}

export interface ResolveRequest {
  profile: string;
  region?: string;
  durationSeconds?: number;
  noSession?: boolean;
  mfaToken?: string;
  /** The command's chainEnvironmentKey: answered only when it equals the daemon's own. */
  environment: string;
  /** The command's explicit backend (`--backend` / AWS_VAULT_BACKEND), normalized. */
  backend?: string;
}

export interface ResolvedCredentials {
  credentials: TemporaryCredentials;
  region: string | undefined;
}
