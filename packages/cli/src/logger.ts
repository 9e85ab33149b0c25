import { silentLogger, type Logger } from '@vault/core';

/** Every path a secret could travel under; pino replaces them before anything is written. */
export const REDACT_PATHS = [
  'secretAccessKey', 'sessionToken', 'SecretAccessKey', 'SessionToken', 'Token', 'passphrase', 'token', 'mfaToken', 'tokenCode',
  '*.secretAccessKey', '*.sessionToken', '*.SecretAccessKey', '*.SessionToken', '*.Token', '*.passphrase', '*.token', '*.mfaToken', '*.tokenCode',
  'req.headers.authorization', 'req.headers["x-aws-ec2-metadata-token"]',
];

/** pino to stderr with redaction under --debug; nothing (and no pino load) otherwise. */
export function createLogger(debug: boolean): Promise<Logger> {
  if (!debug) return Promise.resolve(silentLogger);
  return import('pino').then(({ pino }): Logger => {
    const logger = pino(
      { level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { name: 'vault' } },
      pino.destination({ fd: 2, sync: true }),
    );
    return {
      debug: (obj, msg) => logger.debug(obj, msg),
      info: (obj, msg) => logger.info(obj, msg),
      warn: (obj, msg) => logger.warn(obj, msg),
      error: (obj, msg) => logger.error(obj, msg),
    };
  });
}
