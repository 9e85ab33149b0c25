/** The pino-compatible subset core logs through; the CLI passes a redacting pino, tests pass nothing. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = () => undefined;
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/**
 * Everything that could carry a secret, censored by pino before a line is written — the one list
 * the CLI's --debug log and the daemon's log both use: the tokens clients present, the file
 * passphrase and MFA codes, and credential fields in any object that reaches a log call by mistake.
 * (Data only: core itself never loads pino.)
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["x-aws-ec2-metadata-token"]',
  'headers.authorization',
  'headers["x-aws-ec2-metadata-token"]',
  'token',
  'mfaToken',
  'tokenCode',
  'passphrase',
  'secretAccessKey',
  'sessionToken',
  'SecretAccessKey',
  'SessionToken',
  'Token',
  'credentials',
  '*.token',
  '*.mfaToken',
  '*.tokenCode',
  '*.passphrase',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.SecretAccessKey',
  '*.SessionToken',
  '*.Token',
  '*.credentials',
];

/** What a redacted value is replaced with. */
export const REDACTED = '[REDACTED]';
