import { MAX_ROLE_DURATION_SECONDS, MIN_DURATION_SECONDS, VaultError, parseDurationMs } from '@vault/core';

/** Options shared by the commands that produce credentials (exec, export). */
export interface CredentialOptions {
  profile: string;
  duration?: string;
  /** commander's `--no-session` gives `session: false`. */
  session?: boolean;
  mfaToken?: string;
  region?: string;
}

export function durationSeconds(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const seconds = Math.round(parseDurationMs(raw, '--duration') / 1000);
  if (seconds < MIN_DURATION_SECONDS || seconds > MAX_ROLE_DURATION_SECONDS) {
    throw new VaultError('USAGE', `--duration ${raw} is out of range`, { hint: 'use between 15m and 12h' });
  }
  return seconds;
}

export function chainOptions(input: CredentialOptions) {
  return {
    noSession: input.session === false,
    durationSeconds: durationSeconds(input.duration),
    mfaToken: input.mfaToken,
    region: input.region,
  };
}
