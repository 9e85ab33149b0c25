import { VaultError, type VaultErrorCode } from '../errors.js';

/** What we know about the call that failed, for a message a person can act on. */
export interface StsCallContext {
  operation: 'GetSessionToken' | 'AssumeRole' | 'AssumeRoleWithWebIdentity' | 'GetCallerIdentity' | 'GetFederationToken';
  profile: string;
  roleArn?: string;
  /** The URL the user named, if any; the gateway's record of the URL it used wins (noteStsEndpoint). */
  endpoint?: string;
  /** The profile whose stored long-term key signed the call; absent when a session signed it. */
  keyOwner?: string;
}

interface ErrorLike {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The URL each failed call went to, as the gateway saw it: the SDK chooses it, so only it knows. */
const endpointOfFailure = new WeakMap<object, string>();

/** Remembers which URL a failed call went to, so its message can name the host. Returns the error. */
export function noteStsEndpoint<E>(error: E, url: string): E {
  if (error !== null && typeof error === 'object') endpointOfFailure.set(error, url);
  return error;
}

/**
 * Turns an SDK or network error into one line that says which call failed for which profile and
 * what to do. AWS error messages carry ARNs and reasons, never the caller's secret, so they are kept.
 */
export function toStsError(error: unknown, ctx: StsCallContext): VaultError {
  const e = (error ?? {}) as ErrorLike;
  const awsCode = e.Code ?? e.name ?? e.code ?? 'Error';
  const awsMessage = oneLine(e.message ?? '');
  const what = `${ctx.operation}${ctx.roleArn ? ` of ${ctx.roleArn}` : ''} for profile ${ctx.profile} failed`;
  const reason = awsMessage ? `${awsCode}: ${awsMessage}` : awsCode;
  const endpoint = (error !== null && typeof error === 'object' ? endpointOfFailure.get(error) : undefined) ?? ctx.endpoint;
  const sts = endpoint ? `STS at ${endpoint}` : 'STS';
  const make = (code: VaultErrorCode, hint: string) => new VaultError(code, `${what}: ${reason}`, { hint, cause: error });

  if (/MultiFactorAuthentication failed|invalid MFA/i.test(awsMessage)) {
    return make('MFA_INVALID', 'the MFA code was wrong or already used; wait for the next code and try again');
  }
  const webIdentity = ctx.operation === 'AssumeRoleWithWebIdentity' ? webIdentityHint(awsCode) : undefined;
  if (webIdentity) return make(webIdentity.code, webIdentity.hint);
  switch (awsCode) {
    case 'AccessDenied':
    case 'AccessDeniedException':
      return make(
        'STS_ACCESS_DENIED',
        ctx.operation === 'AssumeRole'
          ? "check the role's trust policy names your user, and that mfa_serial is set if the role requires MFA"
          : 'check the IAM policy of the user whose key is stored',
      );
    case 'ExpiredToken':
    case 'ExpiredTokenException':
    case 'RequestExpired':
      return make('STS_EXPIRED_TOKEN', `run \`vault clear ${ctx.profile}\` and try again (cached credentials ran out early)`);
    case 'InvalidClientTokenId':
    case 'SignatureDoesNotMatch':
    case 'UnrecognizedClientException':
      return make(
        'STS_INVALID_CLIENT_TOKEN',
        ctx.keyOwner !== undefined
          ? `the stored key was rejected; store a valid one with \`vault add ${ctx.keyOwner}\``
          : `cached credentials were rejected; run \`vault clear\` and try again`,
      );
    case 'Throttling':
    case 'ThrottlingException':
    case 'TooManyRequestsException':
    case 'RequestLimitExceeded':
      return make('STS_THROTTLED', 'STS is throttling requests; wait a moment and try again');
    case 'ValidationError':
      return make('STS_FAILED', 'check duration_seconds and the role settings of this profile');
    case 'RegionDisabledException':
      return make('STS_FAILED', 'activate STS in this region in the IAM console, or use another region');
  }
  // A reply the SDK could not parse (cut off, or not STS's XML at all): STS, or something between
  // us and it, answered badly. Said as such: the SDK's own text points at fields of its error object.
  if (e.name === 'MalformedResponse' || /XML parse error|Deserialization error|not well-formed|Unexpected end of/i.test(awsMessage)) {
    const received = e.name === 'MalformedResponse' ? 'a reply without complete credentials' : 'a malformed reply (not valid STS XML)';
    return new VaultError('STS_UNAVAILABLE', `${what}: ${sts} sent ${received}`, {
      hint: 'try again shortly; if it keeps happening, check that AWS_ENDPOINT_URL_STS / endpoint_url point at STS and no proxy rewrites its replies',
      cause: error,
    });
  }
  const network = /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET|EPIPE|EAI_AGAIN|socket hang up|TimeoutError/i;
  if (network.test(`${awsCode} ${e.code ?? ''} ${awsMessage}`)) {
    // The SDK names a reset connection `TimeoutError` too; its errno says what really happened.
    const errno = typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code) ? e.code : undefined;
    const reset = errno === 'ECONNRESET' || errno === 'EPIPE' || (errno === undefined && /socket hang up/i.test(awsMessage));
    const timedOut = !reset && (errno === 'ETIMEDOUT' || (errno === undefined && /TimeoutError|timed? ?out/i.test(`${awsCode} ${awsMessage}`)));
    const detail = reset
      ? `the connection to ${sts} was reset (${errno ?? 'ECONNRESET'})`
      : timedOut
        ? `${sts} did not answer in time (${errno ?? 'ETIMEDOUT'})`
        : `cannot reach ${sts} (${errno ?? awsCode})`;
    return new VaultError('STS_UNAVAILABLE', `${what}: ${detail}`, {
      hint: `${reset || timedOut ? 'try again shortly; if it keeps happening, ' : ''}check the network, region and endpoint settings (AWS_ENDPOINT_URL_STS, endpoint_url)`,
      cause: error,
    });
  }
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) {
    return make('STS_UNAVAILABLE', 'STS had an internal error; try again shortly');
  }
  return make('STS_FAILED', 'run with --debug for details');
}

/**
 * AssumeRoleWithWebIdentity's own errors are about the token, not a stored key or a cached
 * session: the hints the other calls get (vault add, vault clear) would send a person the wrong way.
 */
function webIdentityHint(awsCode: string): { code: VaultErrorCode; hint: string } | undefined {
  switch (awsCode) {
    case 'ExpiredToken':
    case 'ExpiredTokenException':
      return { code: 'STS_EXPIRED_TOKEN', hint: 'the web identity token has expired; get a fresh one from its issuer (CI and EKS rotate the file)' };
    case 'InvalidIdentityToken':
    case 'InvalidIdentityTokenException':
    case 'IDPRejectedClaim':
    case 'IDPRejectedClaimException':
      return { code: 'STS_ACCESS_DENIED', hint: "check the token's issuer and audience match an IAM OIDC provider in the role's account" };
    case 'AccessDenied':
    case 'AccessDeniedException':
      return { code: 'STS_ACCESS_DENIED', hint: "check the role's trust policy names the token's OIDC provider (a Federated principal) and its claims" };
    case 'IDPCommunicationError':
    case 'IDPCommunicationErrorException':
      return { code: 'STS_UNAVAILABLE', hint: "STS could not reach the token's issuer; try again shortly" };
  }
  return undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}
