import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { canonicalQueryString, canonicalUri, headersFromRaw, verifySigV4, type SignedRequest } from './sigv4.js';

/** A Node-crypto hash in the shape the SDK's signer wants (hash, or HMAC when given a key). */
class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

const KEY = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const SIGNING_DATE = new Date(Date.UTC(2026, 0, 1, 12, 0, 0));

/** Signs with the JS SDK's own SigV4 signer, then turns the result into what arrives on the wire. */
async function sdkSigned(input: {
  method?: string;
  path?: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  body?: string;
  service?: string;
  /** The SDK signer adds x-amz-content-sha256 unless told not to. */
  applyChecksum?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}): Promise<SignedRequest> {
  const signer = new SignatureV4({
    credentials: input.credentials ?? KEY,
    region: 'ap-northeast-1',
    service: input.service ?? 'sts',
    sha256: NodeSha256,
    applyChecksum: input.applyChecksum ?? true,
  });
  const body = input.body ?? '';
  const signed = await signer.sign(
    {
      method: input.method ?? 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 4566,
      path: input.path ?? '/',
      query: input.query ?? {},
      headers: { host: '127.0.0.1:4566', ...(input.headers ?? {}) },
      body,
    },
    { signingDate: SIGNING_DATE },
  );
  // A client on the wire: the query encoded with encodeURIComponent (which leaves !'()* alone).
  const query = Object.entries(signed.query ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v ?? '']).map((value) => `${encodeURIComponent(k)}=${encodeURIComponent(value)}`))
    .join('&');
  return { method: signed.method, path: signed.path, query, headers: signed.headers, body: Buffer.from(body) };
}

describe('verifySigV4 against published AWS examples', () => {
  it('the S3 GET Object example of the SigV4 documentation (service s3)', () => {
    const request: SignedRequest = {
      method: 'GET',
      path: '/test.txt',
      query: '',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        range: 'bytes=0-9',
        'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'x-amz-date': '20130524T000000Z',
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
      },
      body: '',
    };
    expect(verifySigV4(request, KEY.secretAccessKey, { service: 's3' })).toMatchObject({ ok: true, accessKeyId: 'AKIAIOSFODNN7EXAMPLE', region: 'us-east-1' });
  });

  it('get-vanilla of the SigV4 test suite (service "service")', () => {
    const request: SignedRequest = {
      method: 'GET',
      path: '/',
      query: '',
      headers: {
        host: 'example.amazonaws.com',
        'x-amz-date': '20150830T123600Z',
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
      },
      body: '',
    };
    expect(verifySigV4(request, 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', { service: 'service' }).ok).toBe(true);
  });
});

describe('verifySigV4 against the JS SDK signer', () => {
  const formBody = 'Action=GetCallerIdentity&Version=2011-06-15';
  const form = { 'content-type': 'application/x-www-form-urlencoded' };

  it('accepts a POST form body, with and without x-amz-content-sha256', async () => {
    const plain = await sdkSigned({ body: formBody, headers: form, applyChecksum: false });
    expect(plain.headers['x-amz-content-sha256']).toBeUndefined();
    expect(verifySigV4(plain, KEY.secretAccessKey)).toMatchObject({ ok: true, service: 'sts', amzDate: '20260101T120000Z' });
    const withHash = await sdkSigned({ body: formBody, headers: form });
    expect(withHash.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(formBody).digest('hex'));
    expect(verifySigV4(withHash, KEY.secretAccessKey).ok).toBe(true);
  });

  it('accepts GET with a query of reserved, repeated and non-ASCII characters, and an encoded path', async () => {
    const request = await sdkSigned({
      method: 'GET',
      path: '/a%20b/c',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15', Odd: "it's (a) test*! ~/=&+", Many: ['b', 'a'], 'Ünï': 'ç😀', Empty: '' },
    });
    expect(verifySigV4(request, KEY.secretAccessKey)).toMatchObject({ ok: true });
  });

  it('rejects a tampered body, a wrong secret, and a body that contradicts x-amz-content-sha256', async () => {
    const request = await sdkSigned({ body: formBody, headers: form, applyChecksum: false });
    expect(verifySigV4({ ...request, body: Buffer.from(`${formBody}&X=1`) }, KEY.secretAccessKey)).toMatchObject({
      ok: false,
      reason: 'signature-mismatch',
      code: 'SignatureDoesNotMatch',
      status: 403,
    });
    expect(verifySigV4(request, 'wrong-secret')).toMatchObject({ ok: false, reason: 'signature-mismatch' });
    const hashed = await sdkSigned({ body: formBody, headers: form });
    expect(verifySigV4({ ...hashed, body: Buffer.from('Action=AssumeRole') }, KEY.secretAccessKey)).toMatchObject({ ok: false, reason: 'payload-hash-mismatch' });
  });

  it('looks the secret up by key id: unknown keys are InvalidClientTokenId', async () => {
    const request = await sdkSigned({ body: formBody, headers: form });
    const seen: string[] = [];
    const lookup = (id: string) => {
      seen.push(id);
      return undefined;
    };
    expect(verifySigV4(request, lookup)).toMatchObject({ ok: false, reason: 'unknown-key', code: 'InvalidClientTokenId', accessKeyId: KEY.accessKeyId });
    expect(seen).toEqual([KEY.accessKeyId]);
  });

  it('insists on service sts, a signed Host, an Authorization header and a matching scope date', async () => {
    const iam = await sdkSigned({ body: formBody, headers: form, service: 'iam' });
    expect(verifySigV4(iam, KEY.secretAccessKey)).toMatchObject({ ok: false, reason: 'wrong-service', message: "Credential should be scoped to correct service: 'sts'. " });
    const request = await sdkSigned({ body: formBody, headers: form });
    const auth = request.headers.authorization as string;
    expect(verifySigV4({ ...request, headers: { ...request.headers, authorization: auth.replace('SignedHeaders=', 'SignedHeaders=x;') } }, KEY.secretAccessKey)).toMatchObject({
      ok: false,
    });
    const noHost = auth.replace(/SignedHeaders=[^,]+/, 'SignedHeaders=content-type;x-amz-date');
    expect(verifySigV4({ ...request, headers: { ...request.headers, authorization: noHost } }, KEY.secretAccessKey)).toMatchObject({ reason: 'host-not-signed' });
    const { authorization: _, ...unsigned } = request.headers;
    expect(verifySigV4({ ...request, headers: unsigned }, KEY.secretAccessKey)).toMatchObject({
      reason: 'missing-authorization',
      code: 'MissingAuthenticationToken',
      message: 'Request is missing Authentication Token',
    });
    expect(verifySigV4({ ...request, headers: { ...request.headers, 'x-amz-date': '20260102T120000Z' } }, KEY.secretAccessKey)).toMatchObject({
      reason: 'scope-date-mismatch',
    });
    expect(verifySigV4({ ...request, headers: { ...request.headers, authorization: 'AWS4-HMAC-SHA256 Credential=AKIA/20260101/x/sts/aws4_request' } }, KEY.secretAccessKey)).toMatchObject({
      reason: 'malformed-authorization',
      code: 'IncompleteSignature',
    });
    expect(verifySigV4({ ...request, headers: { ...request.headers, authorization: 'AWS abc:def' } }, KEY.secretAccessKey)).toMatchObject({ reason: 'unsupported-algorithm' });
  });

  it('checks the signing time only when asked, with AWS wording', async () => {
    const request = await sdkSigned({ body: formBody, headers: form });
    const at = SIGNING_DATE.getTime();
    expect(verifySigV4(request, KEY.secretAccessKey, { now: at + 14 * 60_000 }).ok).toBe(true);
    expect(verifySigV4(request, KEY.secretAccessKey, { now: at + 16 * 60_000 })).toMatchObject({
      ok: false,
      reason: 'request-time-skew',
      code: 'SignatureDoesNotMatch',
      message: 'Signature expired: 20260101T120000Z is now earlier than 20260101T120100Z (20260101T121600Z - 15 min.)',
    });
    expect(verifySigV4(request, KEY.secretAccessKey, { now: at - 16 * 60_000 })).toMatchObject({
      message: 'Signature not yet current: 20260101T120000Z is still later than 20260101T115900Z (20260101T114400Z + 15 min.)',
    });
  });
});

describe('canonical pieces', () => {
  it('repeated headers join with "," and values are trimmed and collapsed', () => {
    expect(headersFromRaw(['X-A', ' one  two ', 'x-a', 'three', 'Host', 'h'])).toEqual({ 'x-a': [' one  two ', 'three'], host: ['h'] });
  });

  it('query strings are decoded, re-encoded RFC 3986 style and sorted by name then value', () => {
    expect(canonicalQueryString("b=2&a=z&a=y&c=it's%20(x)*&d&e=a+b")).toBe('a=y&a=z&b=2&c=it%27s%20%28x%29%2A&d=&e=a%20b');
  });

  it('paths are normalised and encoded once more', () => {
    expect(canonicalUri('')).toBe('/');
    expect(canonicalUri('/')).toBe('/');
    expect(canonicalUri('/a/./b/../c//d%20e/')).toBe('/a/c/d%2520e/');
  });
});
