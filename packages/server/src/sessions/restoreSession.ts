import { isVaultError, VaultError } from '@vault/core';
import type { CredentialSourceFactory, SessionSourceRequest } from '../credentialSource.js';
import type { Logger } from '../logging.js';
import type { PortFaults } from './portFaults.js';
import { RestoredSource } from './restore.js';
import { Session, type ImdsListener, type SessionInit, type SessionRequestInfo } from './session.js';
import type { SessionRecord } from './sessionStore.js';

// One session a killed daemon held, brought back from its record; and the check, once the daemon
// listens, that it can go on as it was.

export interface RestoreSessionContext {
  sourceFactory: CredentialSourceFactory;
  /** What every session of the registry is made with (clock, scheduler, events, …). */
  sessionOptions: () => Pick<SessionInit, 'clock' | 'scheduler' | 'random' | 'backoff' | 'events'>;
  /** Registers the session under its id. */
  add: (session: Session) => void;
  ports: PortFaults;
  openImdsListener?: ((session: Session, port?: number) => Promise<ImdsListener>) | undefined;
  logger: Logger;
}

/**
 * Brings back a session a killed daemon held: the same id, token, kind and creation time, the
 * credentials it was serving (no STS call while they are servable), and for IMDS its own port.
 * It is registered whatever happens; what went wrong is its state (`failed` with the reason
 * when its port is taken: the URI its clients hold cannot be served, and it is not moved).
 */
export async function restoreSession(ctx: RestoreSessionContext, record: SessionRecord, credentialPort: number): Promise<Session> {
  const sourceRequest: SessionSourceRequest = { profile: record.profile };
  const requestInfo: SessionRequestInfo = {};
  if (record.durationSeconds !== undefined) sourceRequest.durationSeconds = requestInfo.durationSeconds = record.durationSeconds;
  if (record.requestedRegion !== undefined) sourceRequest.region = requestInfo.region = record.requestedRegion;
  if (record.noSession === true) sourceRequest.noSession = requestInfo.noSession = true;
  const session = new Session({
    id: record.id,
    token: record.token,
    source: new RestoredSource(ctx.sourceFactory, sourceRequest, record),
    kind: record.kind,
    lazy: record.lazy,
    createdAt: record.createdAt,
    request: requestInfo,
    ...(record.owner ? { owner: record.owner } : {}),
    restored: true,
    ...ctx.sessionOptions(),
  });
  const c = record.credentials;
  const seeded = c
    ? session.credentials.seed(
        { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: new Date(c.expiration) },
        c.fetchedAt,
      )
    : false;
  ctx.add(session);
  if (record.kind === 'ecs' && record.port !== credentialPort) {
    ctx.ports.markPortTaken(session, record.port, `the credential port ${record.port} was taken while the daemon was down`);
  }
  if (record.kind === 'imds' && ctx.openImdsListener) {
    try {
      session.imds = await ctx.openImdsListener(session, record.port);
    } catch (error) {
      ctx.ports.markPortTaken(session, record.port, `its IMDS port ${record.port} could not be listened on again (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  ctx.logger.info(
    {
      event: 'session-restore',
      session: session.id,
      profile: session.profile,
      kind: session.kind,
      lazy: session.lazy,
      port: record.port,
      servingRestoredCredentials: seeded,
      ...(session.fault ? { code: session.fault.code } : {}),
    },
    'session restored',
  );
  return session;
}

/**
 * After a restore, in the background: a session with nothing servable fetches now (unless
 * lazy); one serving restored credentials checks, without STS or the portal, that its MFA
 * session or its IAM Identity Center sign-in still lives, and otherwise shows needs-mfa or
 * needs-login at once. Never throws.
 */
export async function verifyRestored(session: Session, logger: Logger): Promise<void> {
  if (session.state === 'stopped' || session.fault) return;
  try {
    if (!session.currentCredentials()) {
      if (!session.lazy) await session.start();
      return;
    }
    const source = session.source as Partial<RestoredSource>;
    const usable = typeof source.mfaSessionUsable === 'function' ? await source.mfaSessionUsable() : undefined;
    if (usable === false) {
      session.markNeedsMfa(
        new VaultError('SESSION_NEEDS_MFA', `the MFA session for profile ${session.profile} ended while the daemon was down`, {
          hint: `run \`vault session renew ${session.id}\` to enter a new MFA code; the URI and token stay the same`,
        }),
      );
      logger.warn({ event: 'restored-needs-mfa', session: session.id, profile: session.profile }, 'restored session needs a new MFA code');
      return;
    }
    const signedIn = typeof source.ssoSignInUsable === 'function' ? await source.ssoSignInUsable() : undefined;
    if (signedIn === false) {
      session.markNeedsLogin(
        new VaultError('SSO_LOGIN_REQUIRED', `the IAM Identity Center sign-in for profile ${session.profile} ended while the daemon was down`, {
          hint: `run \`vault session renew ${session.id}\` to sign in again; the URI and token stay the same`,
        }),
      );
      logger.warn({ event: 'restored-needs-login', session: session.id, profile: session.profile }, 'restored session needs a new IAM Identity Center sign-in');
    }
  } catch (error) {
    logger.warn(
      { event: 'restore-check-failed', session: session.id, profile: session.profile, code: isVaultError(error) ? error.code : 'INTERNAL', message: error instanceof Error ? error.message : String(error) },
      'restored session could not be checked',
    );
  }
}
