/** What the SDK's errors carry that a one-line message and a retry decision need. */
interface ErrorLike {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

export function awsErrorCode(error: unknown): string {
  const e = (error ?? {}) as ErrorLike;
  return e.Code ?? e.name ?? e.code ?? 'Error';
}

/** `Code: message`, on one line: AWS messages carry ARNs and reasons, never the caller's secret. */
export function describeAwsError(error: unknown): string {
  const e = (error ?? {}) as ErrorLike;
  const message = (e.message ?? '').replace(/\s+/g, ' ').trim().slice(0, 300);
  const code = awsErrorCode(error);
  const errno = typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code) && e.code !== code ? ` (${e.code})` : '';
  return message ? `${code}: ${message}${errno}` : `${code}${errno}`;
}

const TRANSIENT = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'ServiceFailure', 'ServiceUnavailable', 'InternalFailure', 'TimeoutError']);

/** Worth another try: throttling, a 5xx, or the network. */
export function isTransient(error: unknown): boolean {
  const e = (error ?? {}) as ErrorLike;
  if (TRANSIENT.has(awsErrorCode(error))) return true;
  if ((e.$metadata?.httpStatusCode ?? 0) >= 500) return true;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EAI_AGAIN|ENOTFOUND|socket hang up/.test(`${e.code ?? ''} ${e.message ?? ''}`);
}
