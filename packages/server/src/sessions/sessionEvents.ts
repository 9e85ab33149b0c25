import { isVaultError } from '@vault/core';
import type { Logger } from '../logging.js';
import type { Session, SessionEvents } from './session.js';

/** What the registry hears from its sessions: refreshes and failed refreshes are logged, a refresh recorded. */
export function sessionEvents(logger: Logger, persist: (session: Session) => void): SessionEvents {
  return {
    refreshed(session, prepared, roleArn) {
      // The record carries the credentials being served, so a restore needs no STS call.
      if (roleArn === undefined) persist(session);
      logger.info(
        { event: 'credentials-refreshed', session: session.id, profile: session.profile, ...(roleArn ? { roleArn } : {}), expiration: new Date(prepared.expiresAt).toISOString() },
        'credentials refreshed',
      );
    },
    refreshFailed(session, error, info) {
      logger.warn(
        {
          event: 'refresh-failed',
          session: session.id,
          profile: session.profile,
          ...(info.roleArn ? { roleArn: info.roleArn } : {}),
          code: isVaultError(error) ? error.code : 'INTERNAL',
          message: error instanceof Error ? error.message : String(error),
          action: info.action,
          retryAt: info.retryAt === undefined ? undefined : new Date(info.retryAt).toISOString(),
          stillServing: info.stillServing,
        },
        'credential refresh failed',
      );
    },
  };
}
