/**
 * AWS Signature Version 4 verification for the STS stand-in, written from the published algorithm
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html):
 *
 *   canonical request = METHOD \n canonical URI \n canonical query \n canonical headers \n
 *                       signed header list \n hex(sha256(payload))
 *   string to sign    = AWS4-HMAC-SHA256 \n X-Amz-Date \n date/region/service/aws4_request \n
 *                       hex(sha256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
 *   signature         = hex(HMAC(signing key, string to sign))
 *
 * Only the `Authorization` header form is supported (not presigned query strings).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';

/** Headers as a map from lower-case name to every value received for it, in order. */
export type RequestHeaders = Record<string, string | string[] | undefined>;

/** What the verifier needs of a request: exactly what arrived on the wire. */
export interface SignedRequest {
  method: string;
  /** Path without the query string, as sent (still percent-encoded). */
  path: string;
  /** Raw query string, without `?`; '' when there is none. */
  query: string;
  /**
   * Header names in lower case. Prefer `headersFromRaw(req.rawHeaders)`: Node's `req.headers`
   * joins repeated headers with ", " where SigV4 wants ",".
   */
  headers: RequestHeaders;
  body: Buffer | string;
}

/** The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header. */
export interface SigV4Authorization {
  accessKeyId: string;
  /** YYYYMMDD from the credential scope. */
  date: string;
  region: string;
  service: string;
  /** The scope terminator; must be `aws4_request`. */
  terminator: string;
  signedHeaders: string[];
  signature: string;
}

export type SigV4FailureReason =
  | 'missing-authorization'
  | 'malformed-authorization'
  | 'unsupported-algorithm'
  | 'missing-date'
  | 'malformed-date'
  | 'scope-date-mismatch'
  | 'bad-scope-terminator'
  | 'wrong-service'
  | 'host-not-signed'
  | 'unknown-key'
  | 'payload-hash-mismatch'
  | 'signature-mismatch'
  | 'request-time-skew';

export interface SigV4Success {
  ok: true;
  accessKeyId: string;
  region: string;
  service: string;
  /** X-Amz-Date as sent, `YYYYMMDDTHHMMSSZ`. */
  amzDate: string;
  /** The signing time as epoch milliseconds. */
  signedAt: number;
  signedHeaders: string[];
  canonicalRequest: string;
  stringToSign: string;
}

export interface SigV4Failure {
  ok: false;
  reason: SigV4FailureReason;
  /** The error code AWS answers with for this failure. */
  code: 'MissingAuthenticationToken' | 'IncompleteSignature' | 'InvalidClientTokenId' | 'SignatureDoesNotMatch' | 'XAmzContentSHA256Mismatch';
  /** The HTTP status AWS answers with. */
  status: 400 | 403;
  /** AWS's wording for it; never carries a secret. */
  message: string;
  /** Known once the header parsed. */
  accessKeyId?: string;
  /** Present when the signature itself was computed (mismatch or time skew), for debugging. */
  canonicalRequest?: string;
  stringToSign?: string;
}

export type SigV4Result = SigV4Success | SigV4Failure;

export interface VerifySigV4Options {
  /** The service the credential scope must name. Default `sts`. */
  service?: string;
  /** When given, the signing time must be within `maxSkewMs` of it (AWS: 15 minutes). */
  now?: number;
  maxSkewMs?: number;
}

/** Either the secret itself or a lookup by access key id (undefined = unknown key). */
export type SecretSource = string | ((accessKeyId: string) => string | undefined);

const FIFTEEN_MINUTES = 15 * 60 * 1000;
const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** Groups Node's `req.rawHeaders` (name, value, name, value…) by lower-case name. */
export function headersFromRaw(rawHeaders: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    (out[name] ??= []).push(rawHeaders[i + 1]!);
  }
  return out;
}

function headerValues(headers: RequestHeaders, name: string): string[] | undefined {
  const value = headers[name] ?? headers[Object.keys(headers).find((k) => k.toLowerCase() === name) ?? ''];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value : [value];
}

/** One header's canonical value: each value trimmed, inner runs of spaces collapsed, joined by ",". */
function canonicalHeaderValue(headers: RequestHeaders, name: string): string | undefined {
  const values = headerValues(headers, name);
  return values?.map((v) => v.trim().replace(/\s+/g, ' ')).join(',');
}

/** RFC 3986 percent-encoding: everything but A-Z a-z 0-9 - _ . ~ (and `/` when asked). */
export function uriEncode(text: string, keepSlash = false): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Percent-decoding that tolerates stray `%` (kept literally) and treats `+` as a space, as form decoding does. */
function decodeComponent(text: string): string {
  const plus = text.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}

/**
 * The canonical URI of every service but S3: dot segments and empty segments removed, then each
 * segment URI-encoded once more (the path on the wire is already encoded, so it ends up encoded twice).
 */
export function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  if (segments.length === 0) return '/';
  const trailing = rawPath.endsWith('/') ? '/' : '';
  return `/${segments.map((s) => uriEncode(s)).join('/')}${trailing}`;
}

/** Decodes each name and value, re-encodes them RFC 3986 style, sorts by name then value. */
export function canonicalQueryString(rawQuery: string): string {
  if (!rawQuery) return '';
  const pairs = rawQuery
    .split('&')
    .filter((pair) => pair.length > 0)
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      const value = eq < 0 ? '' : pair.slice(eq + 1);
      return [uriEncode(decodeComponent(name)), uriEncode(decodeComponent(value))] as const;
    })
    .filter(([name]) => name !== 'X-Amz-Signature');
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  pairs.sort(([an, av], [bn, bv]) => cmp(an, bn) || cmp(av, bv));
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

/** Parses the header; undefined when it is not a complete AWS4-HMAC-SHA256 authorization. */
export function parseAuthorization(header: string | undefined): SigV4Authorization | undefined {
  const parsed = parseAuthorizationDetailed(header);
  return 'auth' in parsed ? parsed.auth : undefined;
}

type ParseOutcome = { auth: SigV4Authorization } | { failure: SigV4Failure };

function parseAuthorizationDetailed(header: string | undefined): ParseOutcome {
  const fail = (reason: SigV4FailureReason, message: string, code: SigV4Failure['code'] = 'IncompleteSignature', status: 400 | 403 = 400): ParseOutcome => ({
    failure: { ok: false, reason, code, status, message },
  });
  if (header === undefined || header.trim() === '') {
    return fail('missing-authorization', 'Request is missing Authentication Token', 'MissingAuthenticationToken', 403);
  }
  const text = header.trim();
  const space = text.search(/\s/);
  const algorithm = space < 0 ? text : text.slice(0, space);
  if (algorithm !== SIGV4_ALGORITHM) {
    return fail('unsupported-algorithm', `Unsupported AWS 'algorithm': '${algorithm}'`);
  }
  const params = new Map<string, string>();
  for (const part of text.slice(space).split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((p) => !params.get(p));
  if (missing.length > 0) {
    return fail('malformed-authorization', missing.map((p) => `Authorization header requires '${p}' parameter.`).join(' '));
  }
  const credential = params.get('Credential')!.split('/');
  if (credential.length !== 5 || credential.some((c) => c === '')) {
    return fail(
      'malformed-authorization',
      'Credential should be scoped as <access key id>/<date>/<region>/<service>/aws4_request.',
    );
  }
  const [accessKeyId, date, region, service, terminator] = credential as [string, string, string, string, string];
  const signature = params.get('Signature')!;
  if (!/^[0-9a-f]{64}$/.test(signature)) {
    return { failure: { ok: false, reason: 'signature-mismatch', code: 'SignatureDoesNotMatch', status: 403, message: SIGNATURE_MISMATCH, accessKeyId } };
  }
  const signedHeaders = params.get('SignedHeaders')!.split(';');
  return { auth: { accessKeyId, date, region, service, terminator, signedHeaders, signature } };
}

/** `YYYYMMDDTHHMMSSZ` → epoch ms, or undefined. */
export function parseAmzDate(amzDate: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  return Number.isNaN(ms) ? undefined : ms;
}

/** epoch ms → `YYYYMMDDTHHMMSSZ`. */
export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

export function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
}

/** Builds the canonical request exactly as SigV4 defines it (`signedHeaders` in the order signed). */
export function canonicalRequest(request: SignedRequest, signedHeaders: readonly string[], payloadHash: string): string {
  const headerBlock = signedHeaders.map((name) => `${name}:${canonicalHeaderValue(request.headers, name) ?? ''}\n`).join('');
  return [request.method.toUpperCase(), canonicalUri(request.path), canonicalQueryString(request.query), headerBlock, signedHeaders.join(';'), payloadHash].join('\n');
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Verifies the request's SigV4 `Authorization` header against the secret of the key it names:
 * scope (date, service, terminator), Host signed, payload hash (`x-amz-content-sha256` when sent,
 * checked against the body), signature compared in constant time, then — when `now` is given —
 * the signing time within 15 minutes of it. Every failure carries AWS's code and wording.
 */
export function verifySigV4(request: SignedRequest, secret: SecretSource, options: VerifySigV4Options = {}): SigV4Result {
  const service = options.service ?? 'sts';
  const parsed = parseAuthorizationDetailed(canonicalHeaderValue(request.headers, 'authorization'));
  if ('failure' in parsed) return parsed.failure;
  const auth = parsed.auth;
  const { accessKeyId } = auth;
  const fail = (reason: SigV4FailureReason, code: SigV4Failure['code'], status: 400 | 403, message: string, extra: Partial<SigV4Failure> = {}): SigV4Failure => ({
    ok: false,
    reason,
    code,
    status,
    message,
    accessKeyId,
    ...extra,
  });

  const amzDate = canonicalHeaderValue(request.headers, 'x-amz-date');
  if (amzDate === undefined) {
    return fail('missing-date', 'IncompleteSignature', 400, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  }
  const signedAt = parseAmzDate(amzDate);
  if (signedAt === undefined) {
    return fail('malformed-date', 'IncompleteSignature', 400, `Date must be in ISO-8601 'basic format'. Got '${amzDate}'. See http://en.wikipedia.org/wiki/ISO_8601`);
  }
  if (auth.date !== amzDate.slice(0, 8)) {
    return fail(
      'scope-date-mismatch',
      'SignatureDoesNotMatch',
      403,
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
    );
  }
  if (auth.terminator !== 'aws4_request') {
    return fail('bad-scope-terminator', 'SignatureDoesNotMatch', 403, `Credential should be scoped with a valid terminator: 'aws4_request', not '${auth.terminator}'.`);
  }
  if (auth.service !== service) {
    return fail('wrong-service', 'SignatureDoesNotMatch', 403, `Credential should be scoped to correct service: '${service}'. `);
  }
  if (!auth.signedHeaders.includes('host') && !auth.signedHeaders.includes(':authority')) {
    return fail('host-not-signed', 'SignatureDoesNotMatch', 403, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }

  const secretAccessKey = typeof secret === 'function' ? secret(accessKeyId) : secret;
  if (secretAccessKey === undefined) {
    return fail('unknown-key', 'InvalidClientTokenId', 403, 'The security token included in the request is invalid.');
  }

  const bodyHash = sha256Hex(request.body);
  const declared = canonicalHeaderValue(request.headers, 'x-amz-content-sha256');
  if (declared !== undefined && /^[0-9a-fA-F]{64}$/.test(declared) && declared.toLowerCase() !== bodyHash) {
    return fail('payload-hash-mismatch', 'XAmzContentSHA256Mismatch', 400, "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  const payloadHash = declared ?? bodyHash;

  const canonical = canonicalRequest(request, auth.signedHeaders, payloadHash);
  const scope = `${auth.date}/${auth.region}/${auth.service}/${auth.terminator}`;
  const stringToSign = [SIGV4_ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
  const expected = createHmac('sha256', signingKey(secretAccessKey, auth.date, auth.region, auth.service)).update(stringToSign, 'utf8').digest('hex');
  if (!sameHex(expected, auth.signature)) {
    return fail('signature-mismatch', 'SignatureDoesNotMatch', 403, SIGNATURE_MISMATCH, { canonicalRequest: canonical, stringToSign });
  }

  if (options.now !== undefined) {
    const maxSkew = options.maxSkewMs ?? FIFTEEN_MINUTES;
    const minutes = `${Math.round(maxSkew / 60000)} min.`;
    if (signedAt < options.now - maxSkew) {
      return fail(
        'request-time-skew',
        'SignatureDoesNotMatch',
        403,
        `Signature expired: ${amzDate} is now earlier than ${formatAmzDate(options.now - maxSkew)} (${formatAmzDate(options.now)} - ${minutes})`,
        { canonicalRequest: canonical, stringToSign },
      );
    }
    if (signedAt > options.now + maxSkew) {
      return fail(
        'request-time-skew',
        'SignatureDoesNotMatch',
        403,
        `Signature not yet current: ${amzDate} is still later than ${formatAmzDate(options.now + maxSkew)} (${formatAmzDate(options.now)} + ${minutes})`,
        { canonicalRequest: canonical, stringToSign },
      );
    }
  }

  return {
    ok: true,
    accessKeyId,
    region: auth.region,
    service: auth.service,
    amzDate,
    signedAt,
    signedHeaders: auth.signedHeaders,
    canonicalRequest: canonical,
    stringToSign,
  };
}
