import type { TemporaryCredentials } from '../credentials.js';
import { VaultError } from '../errors.js';

/** What the console shows as the identity provider that signed the user in. */
export const SIGNIN_ISSUER = 'vault';

/** AWS's limits on a console session from role credentials (the federation endpoint's SessionDuration). */
export const MIN_CONSOLE_SESSION_SECONDS = 900;
export const MAX_CONSOLE_SESSION_SECONDS = 43_200;

export interface SigninTokenRequest {
  endpoint: string;
  credentials: TemporaryCredentials;
  /** Only for role credentials: the federation endpoint refuses it with GetFederationToken's. */
  sessionDurationSeconds?: number;
  /** For the error line: which profile was signing in. */
  profile: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * Trades temporary credentials for a sign-in token at the federation endpoint
 * (`Action=getSigninToken`). The credentials travel in the query string, as the endpoint
 * requires, over the HTTPS connection; they are never logged and never part of an error.
 */
export async function requestSigninToken(request: SigninTokenRequest): Promise<string> {
  const url = new URL(request.endpoint);
  url.searchParams.set('Action', 'getSigninToken');
  url.searchParams.set(
    'Session',
    JSON.stringify({
      sessionId: request.credentials.accessKeyId,
      sessionKey: request.credentials.secretAccessKey,
      sessionToken: request.credentials.sessionToken,
    }),
  );
  if (request.sessionDurationSeconds !== undefined) url.searchParams.set('SessionDuration', String(request.sessionDurationSeconds));
  const where = `${url.origin}${url.pathname}`;
  const failed = (what: string, hint: string, cause?: unknown) =>
    new VaultError('SIGNIN_FAILED', `the sign-in endpoint ${where} ${what} for profile ${request.profile}`, { hint, cause });
  let response: Response;
  try {
    response = await (request.fetch ?? fetch)(url, { redirect: 'manual', signal: AbortSignal.timeout(request.timeoutMs ?? 15_000) });
  } catch (cause) {
    // fetch's TypeError says only "fetch failed"; what happened is in its cause (ECONNREFUSED, "bad port"…).
    const inner = cause instanceof Error ? (cause.cause as NodeJS.ErrnoException | undefined) : undefined;
    const reason = inner?.code ?? inner?.message ?? (cause instanceof Error ? cause.name : 'error');
    throw failed(`could not be reached (${reason})`, 'check the network, and VAULT_SIGNIN_ENDPOINT if you set it', cause);
  }
  const body = await response.text().catch(() => '');
  if (response.status !== 200) {
    throw failed(
      `refused the credentials (HTTP ${response.status})`,
      response.status >= 500
        ? 'the sign-in service had an error; try again shortly'
        : `the console takes role or federation credentials only; check the profile's role_arn, or run \`vault clear ${request.profile}\` and try again`,
    );
  }
  let token: unknown;
  try {
    token = (JSON.parse(body) as { SigninToken?: unknown }).SigninToken;
  } catch {
    token = undefined;
  }
  if (typeof token !== 'string' || token === '') {
    throw failed('answered without a SigninToken', 'check that VAULT_SIGNIN_ENDPOINT points at a federation endpoint');
  }
  return token;
}

/** The `Action=login` URL that opens the console: a bearer credential for the token's 15 minutes. */
export function signinUrl(endpoint: string, destination: string, signinToken: string): string {
  const url = new URL(endpoint);
  url.searchParams.set('Action', 'login');
  url.searchParams.set('Issuer', SIGNIN_ISSUER);
  url.searchParams.set('Destination', destination);
  url.searchParams.set('SigninToken', signinToken);
  return url.toString();
}

/** The console session's length for role credentials: as long as they last, within AWS's limits. */
export function consoleSessionSeconds(credentials: TemporaryCredentials, now: number): number {
  const left = Math.floor((credentials.expiration.getTime() - now) / 1000);
  return Math.min(MAX_CONSOLE_SESSION_SECONDS, Math.max(MIN_CONSOLE_SESSION_SECONDS, left));
}
