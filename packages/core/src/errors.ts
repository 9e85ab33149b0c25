/**
 * Every failure a person can act on is a VaultError: a stable `code` for programs and tests,
 * a one-line `message` saying what is wrong, and a `hint` saying what to do about it.
 * Messages never carry secret values; callers must not interpolate keys or tokens into them.
 */
export const VAULT_ERROR_CODES = [
  'CONFIG_PARSE',
  'CONFIG_WRITE',
  'PROFILE_NOT_FOUND',
  'PROFILE_CYCLE',
  'PROFILE_NO_CREDENTIALS',
  'PROFILE_INVALID',
  'KEYRING_UNAVAILABLE',
  'KEYRING_LOCKED',
  'KEYRING_BAD_PASSPHRASE',
  'KEYRING_CORRUPT',
  'KEYRING_WRITE',
  'KEY_NOT_FOUND',
  'MFA_REQUIRED',
  'MFA_INVALID',
  'STS_ACCESS_DENIED',
  'STS_EXPIRED_TOKEN',
  'STS_INVALID_CLIENT_TOKEN',
  'STS_THROTTLED',
  'STS_UNAVAILABLE',
  'STS_FAILED',
  /** IAM Identity Center: a sign-in is needed and cannot happen here (the daemon never prompts). */
  'SSO_LOGIN_REQUIRED',
  /** IAM Identity Center: the device code expired (or was denied) before the person approved it. */
  'SSO_LOGIN_FAILED',
  /** IAM Identity Center: the OIDC service or access portal refused or failed a call. */
  'SSO_FAILED',
  'USAGE',
  /** The person cancelled a prompt (^C, ^D): the CLI exits 130, as a shell does for ^C. */
  'CANCELLED',
  'NESTED_VAULT',
  'DAEMON_UNAVAILABLE',
  'DAEMON_MISMATCH',
  'SESSION_NOT_FOUND',
  'SESSION_NEEDS_MFA',
  /** `vault login`: the federation endpoint refused or could not be reached, or no browser opened. */
  'SIGNIN_FAILED',
  'BROWSER_UNAVAILABLE',
  /** `vault rotate`: a step failed; the line says which key is stored and what to run. */
  'ROTATE_FAILED',
  'IAM_FAILED',
  'INTERNAL',
] as const;

export type VaultErrorCode = (typeof VAULT_ERROR_CODES)[number];

export interface VaultErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class VaultError extends Error {
  override readonly name = 'VaultError';
  readonly code: VaultErrorCode;
  readonly hint: string | undefined;

  constructor(code: VaultErrorCode, message: string, options: VaultErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }

  /** The line shown to a person: what is wrong, then what to do. */
  toLine(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message;
  }
}

export function isVaultError(value: unknown): value is VaultError {
  return value instanceof VaultError;
}
