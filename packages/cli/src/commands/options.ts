import { MAX_ROLE_DURATION_SECONDS, MIN_DURATION_SECONDS, VaultError, checkMfaCode, parseDurationMs } from '@vault/core';

/** Options shared by the commands that produce credentials (exec, export). */
export interface CredentialOptions {
  profile: string;
  duration?: string;
  /** commander's `--no-session` gives `session: false`. */
  session?: boolean;
  mfaToken?: string;
  region?: string;
  /** `--stdout`: print the IAM Identity Center sign-in URL and code, open no browser. */
  stdout?: boolean;
}

export function durationSeconds(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const seconds = Math.round(parseDurationMs(raw, '--duration') / 1000);
  if (seconds < MIN_DURATION_SECONDS || seconds > MAX_ROLE_DURATION_SECONDS) {
    throw new VaultError('USAGE', `--duration ${raw} is out of range`, { hint: 'use between 15m and 12h' });
  }
  return seconds;
}

/**
 * `-t/--mfa-token`, checked the moment a command starts, by every command that takes it (exec,
 * export, exec --server, session start, session renew): a mistyped code is refused here, before
 * the daemon or STS sees it, even when cached credentials mean it would not have been used.
 */
export function mfaTokenOption(raw: string | undefined): string | undefined {
  return raw === undefined ? undefined : checkMfaCode(raw, '--mfa-token');
}

export function chainOptions(input: CredentialOptions) {
  return {
    noSession: input.session === false,
    durationSeconds: durationSeconds(input.duration),
    mfaToken: mfaTokenOption(input.mfaToken),
    region: input.region,
    stdout: input.stdout === true,
  };
}
