import type { FastifyReply, FastifyRequest } from 'fastify';
import { isVaultError, type VaultErrorCode } from '@vault/core';
import { sendError, type HttpError } from '../httpApp.js';

// How the control API answers a failure: a VaultError keeps its code and hint under the HTTP
// status that code maps to; anything else is USAGE (a bad request) or INTERNAL.

/** Which HTTP status a VaultError code maps to on the control API. */
export function statusForCode(code: string): number {
  switch (code as VaultErrorCode) {
    case 'USAGE':
    case 'CONFIG_PARSE':
    case 'PROFILE_CYCLE':
    case 'PROFILE_INVALID':
    case 'PROFILE_NO_CREDENTIALS':
    case 'NESTED_VAULT':
      return 400;
    case 'MFA_REQUIRED':
    case 'MFA_INVALID':
    case 'SESSION_NEEDS_MFA':
    case 'SSO_LOGIN_REQUIRED':
    case 'DAEMON_MISMATCH':
      return 409;
    case 'STS_ACCESS_DENIED':
    case 'STS_INVALID_CLIENT_TOKEN':
    case 'STS_EXPIRED_TOKEN':
      return 403;
    case 'PROFILE_NOT_FOUND':
    case 'KEY_NOT_FOUND':
    case 'SESSION_NOT_FOUND':
      return 404;
    case 'KEYRING_LOCKED':
      return 423;
    case 'STS_THROTTLED':
      return 429;
    case 'STS_UNAVAILABLE':
    case 'STS_FAILED':
      return 502;
    case 'DAEMON_UNAVAILABLE':
      return 503;
    default:
      return 500;
  }
}

/** VaultErrors keep their code (and hint); fastify's validation errors are USAGE. */
export function controlErrorHandler(error: HttpError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isVaultError(error)) {
    const status = statusForCode(error.code);
    if (status >= 500) request.log.warn({ code: error.code, message: error.message }, 'control request failed');
    return sendError(reply, status, error.code, error.message, error.hint);
  }
  if (error.validation) return sendError(reply, 400, 'USAGE', `invalid request: ${error.message}`);
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
  if (status === 500) {
    request.log.error({ code: error.code, message: error.message }, 'control request failed');
    return sendError(reply, 500, 'INTERNAL', 'internal error in the vault daemon');
  }
  return sendError(reply, status, status === 404 ? 'NOT_FOUND' : 'USAGE', error.message);
}
