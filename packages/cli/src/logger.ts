import { REDACT_PATHS, REDACTED, silentLogger, type Logger } from '@vault/core';

/** pino to stderr with core's redaction list under --debug; nothing (and no pino load) otherwise. */
export function createLogger(debug: boolean): Promise<Logger> {
  if (!debug) return Promise.resolve(silentLogger);
  return import('pino').then(({ pino }): Logger => {
    const logger = pino(
      { level: 'debug', redact: { paths: [...REDACT_PATHS], censor: REDACTED }, base: { name: 'vault' } },
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
