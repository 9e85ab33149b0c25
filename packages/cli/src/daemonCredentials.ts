import { existsSync } from 'node:fs';
import { chainEnvironmentKey, isVaultError, normalizeBackendName, type TemporaryCredentials, type VaultErrorCode } from '@vault/core';
import type { Context } from './context.js';

export interface DaemonCredentialRequest {
  profile: string;
  region?: string | undefined;
  durationSeconds?: number | undefined;
  noSession?: boolean | undefined;
  mfaToken?: string | undefined;
  /** Answer from a live session of the profile when there is one (credential_process). */
  preferSession?: boolean;
}

/**
 * Answers from the daemon that a command takes as final: asking again locally would give the
 * same answer after another STS call (or a second use of a one-time MFA code).
 */
const FINAL: ReadonlySet<VaultErrorCode> = new Set<VaultErrorCode>([
  'CONFIG_PARSE',
  'PROFILE_NOT_FOUND',
  'PROFILE_CYCLE',
  'PROFILE_NO_CREDENTIALS',
  'MFA_INVALID',
  'STS_ACCESS_DENIED',
  'STS_EXPIRED_TOKEN',
  'STS_INVALID_CLIENT_TOKEN',
]);

/**
 * A profile's credentials from the running daemon, which holds the keyring open (like
 * ssh-agent): a command then loads neither the keyring backend nor the AWS SDK, and on the file
 * backend pays no KDF. Undefined — resolve locally — when no daemon runs, when it runs with
 * another configuration, or when it cannot answer without help (an MFA code to prompt for, a
 * locked keyring, a profile that starts from this shell's own credentials: the daemon says
 * DAEMON_MISMATCH). Only the daemon's own socket is asked, and only when it exists.
 */
export async function credentialsFromDaemon(
  ctx: Context,
  request: DaemonCredentialRequest,
): Promise<{ credentials: TemporaryCredentials; region: string | undefined; source: string } | undefined> {
  const { checkedStateLocation, daemonPaths, stateDirInUse, DaemonClient } = await import('@vault/server/client');
  // An unsafe VAULT_STATE_DIR or XDG_RUNTIME_DIR is refused, not skipped: a socket planted there
  // would be sent the profile and the MFA code.
  const socketPath = daemonPaths(stateDirInUse(checkedStateLocation(ctx.env))).socket;
  if (!existsSync(socketPath)) return undefined;
  let backend: string | undefined;
  try {
    const explicit = ctx.options.backend || ctx.env.AWS_VAULT_BACKEND;
    backend = explicit ? normalizeBackendName(explicit) : undefined;
  } catch {
    return undefined; // the local path reports the bad backend name
  }
  try {
    // Generous: the daemon may call STS for the command (with the SDK's own retries).
    const answer = await new DaemonClient({ socketPath, timeoutMs: 20_000 }).resolveCredentials({
      profile: request.profile,
      environment: chainEnvironmentKey(ctx.env, ctx.homeDir),
      ...(backend === undefined ? {} : { backend }),
      ...(request.region === undefined ? {} : { region: request.region }),
      ...(request.durationSeconds === undefined ? {} : { durationSeconds: request.durationSeconds }),
      ...(request.noSession ? { noSession: true } : {}),
      ...(request.mfaToken === undefined ? {} : { mfaToken: request.mfaToken }),
      ...(request.preferSession ? { preferSession: true } : {}),
    });
    ctx.logger.debug({ profile: request.profile, source: answer.source }, 'credentials from the daemon');
    return {
      credentials: {
        accessKeyId: answer.accessKeyId,
        secretAccessKey: answer.secretAccessKey,
        sessionToken: answer.sessionToken,
        expiration: new Date(answer.expiration),
      },
      region: answer.region,
      source: answer.source,
    };
  } catch (error) {
    if (isVaultError(error) && FINAL.has(error.code)) throw error;
    ctx.logger.debug({ code: isVaultError(error) ? error.code : 'INTERNAL' }, 'the daemon did not answer; resolving locally');
    return undefined;
  }
}
