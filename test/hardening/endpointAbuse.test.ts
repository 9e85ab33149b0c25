import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManualClock } from '@vault/core';
import { HEADERS_TIMEOUT_MS } from '../../packages/server/src/httpApp.js';
import { MAX_ROLE_CACHES } from '../../packages/server/src/sessions/session.js';
import { startTestDaemon } from '@vault/stand-ins/server';
import { cmdlineOf, findLeaks } from '../support/leaks.js';
import { httpRequest, nonLoopbackAddress, parseResponse, rawExchange, seededRandom, type HttpSpec, type Reply } from './http.js';

/**
 * Endpoint abuse: a live daemon (real listeners on 127.0.0.1, in this process, over fake
 * credential sources and a ManualClock) against every kind of request that must not get
 * credentials — then 10,000 of them in a row while a legitimate client keeps polling.
 *
 * The checks that need the machine's help never pass silently: a peer that is not loopback needs
 * a non-loopback IPv4 address on this host, and the network-namespace check needs root (`unshare
 * -n`) and iproute2 (`ip`). CI runs as root on a host with an address; elsewhere those tests fail
 * saying what is missing.
 */

type Fixture = Awaited<ReturnType<typeof startTestDaemon>>;
interface Created {
  id: string;
  token: string;
  imdsEndpoint?: string;
}

const ROLE = 'arn:aws:iam::222222222222:role/account-a-assume-role';
const IMDS_CREDS = '/latest/meta-data/iam/security-credentials/';
/** What only a credential body contains (the fake source marks every secret it mints). */
const CREDENTIAL_MARKERS = ['AccessKeyId', 'SecretAccessKey', '"Token"', 'fake-secret', 'fake-session-token', 'ASIAFAKE'];

let f: Fixture;
let clock: ManualClock;
let port: number;
let a: Created;
let b: Created;
let ia: Created & { port: number };
let ib: Created & { port: number };
let imdsTokenA: string;
let imdsTokenB: string;
let expiredImdsToken: string;
let logText = '';
const peer = nonLoopbackAddress();

/** The non-loopback address to connect from, or a failure that says what the test needs. */
function requirePeer(): string {
  if (peer === undefined) {
    throw new Error('this test needs a non-loopback IPv4 address on this machine (e.g. eth0) to connect from; it has none, so the peer guard would go untested');
  }
  return peer;
}
/** Every secret this suite saw: session tokens, IMDS tokens, and every credential served. */
const secrets = new Set<string>();
/** Credential responses (200 with a body) received by any client in this file. */
let credentialsServed = 0;

function portOf(endpoint: string | undefined): number {
  const m = /:(\d+)\/?$/.exec(endpoint ?? '');
  if (!m) throw new Error(`no port in ${endpoint}`);
  return Number(m[1]);
}

/** Everything wrong with a reply that was supposed to be a refusal. Empty when it is right. */
function rejectionProblems(reply: Reply, status: number, code: string, head = false): string[] {
  const problems: string[] = [];
  if (reply.noResponse) return [`no response at all (connection closed)`];
  if (reply.status !== status) problems.push(`status ${reply.status}, expected ${status}`);
  const type = String(reply.headers['content-type'] ?? '');
  if (!type.startsWith('application/json')) problems.push(`content-type ${JSON.stringify(type)}`);
  for (const name of Object.keys(reply.headers)) if (name.toLowerCase().startsWith('access-control-')) problems.push(`CORS header ${name}`);
  for (const marker of CREDENTIAL_MARKERS) if (reply.body.includes(marker)) problems.push(`body carries ${marker}`);
  for (const secret of secrets) if (reply.body.includes(secret)) problems.push('body carries a secret');
  if (head) {
    if (reply.body !== '') problems.push('HEAD reply with a body');
    return problems;
  }
  try {
    const body = JSON.parse(reply.body) as Record<string, unknown>;
    if (Object.keys(body).sort().join(',') !== 'Code,Message') problems.push(`body keys ${Object.keys(body).join(',')}`);
    if (body.Code !== code) problems.push(`Code ${String(body.Code)}, expected ${code}`);
    if (typeof body.Message !== 'string' || body.Message === '') problems.push('no Message');
  } catch {
    problems.push(`body is not JSON: ${JSON.stringify(reply.body.slice(0, 80))}`);
  }
  return problems;
}

/** A credential reply for the legitimate client: 200 and a complete body; remembers its secrets. */
function credentialsOf(reply: Reply): { AccessKeyId: string; SecretAccessKey: string; Token: string } {
  expect(reply.status, reply.body).toBe(200);
  const body = JSON.parse(reply.body) as { AccessKeyId: string; SecretAccessKey: string; Token: string };
  expect(body.AccessKeyId).toMatch(/^ASIAFAKE/);
  secrets.add(body.SecretAccessKey);
  secrets.add(body.Token);
  credentialsServed++;
  return body;
}

interface HostileCase {
  name: string;
  status: number;
  code: string;
  head?: boolean;
  /** Raw cases open their own connection; others use the agent given (keep-alive) or none. */
  send(agent: Agent | undefined): Promise<Reply>;
}

const caseList: HostileCase[] = [];
/** Requests from a non-loopback address: run by a test of their own, which needs such an address. */
const peerCaseList: HostileCase[] = [];
function hostile(name: string, status: number, code: string, spec: () => Omit<HttpSpec, 'agent'>, extra: { head?: boolean; list?: HostileCase[] } = {}): void {
  (extra.list ?? caseList).push({ name, status, code, ...(extra.head ? { head: true } : {}), send: (agent) => httpRequest({ ...spec(), ...(agent ? { agent } : {}) }) });
}
function hostileRaw(name: string, status: number, code: string, text: () => string, localAddress?: string): void {
  caseList.push({ name, status, code, send: () => rawExchange(port, text(), localAddress ? { localAddress } : {}) });
}

// Builds the table once the daemon is up (ports and tokens are known then).
function buildCases(): void {
  const creds = () => `/creds/${a.id}`;
  const withToken = (headers: Record<string, string | null> = {}) => ({ authorization: a.token, ...headers });
  const c = (path: string, headers: Record<string, string | null>, method = 'GET', body?: string) => ({ port, path, method, headers, ...(body !== undefined ? { body } : {}) });

  // --- tokens --------------------------------------------------------------------------------
  const denied = (name: string, spec: () => Omit<HttpSpec, 'agent'>) => hostile(`token: ${name}`, 403, 'ACCESS_DENIED', spec);
  denied('missing', () => c(creds(), {}));
  denied('empty', () => c(creds(), { authorization: '' }));
  denied('wrong (random, right length)', () => c(creds(), { authorization: randomBytes(32).toString('base64url') }));
  denied('truncated by one', () => c(creds(), { authorization: a.token.slice(0, -1) }));
  denied('truncated to half', () => c(creds(), { authorization: a.token.slice(0, 21) }));
  denied('padded with =', () => c(creds(), { authorization: `${a.token}=` }));
  denied('padded with a character', () => c(creds(), { authorization: `${a.token}A` }));
  denied('prefixed with Bearer', () => c(creds(), { authorization: `Bearer ${a.token}` }));
  denied('doubled', () => c(creds(), { authorization: `${a.token}${a.token}` }));
  denied('case swapped', () => c(creds(), { authorization: a.token.replace(/[a-z]/gi, (ch) => (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase())) }));
  denied("another session's token", () => c(creds(), { authorization: b.token }));
  denied("this token on another session's URI", () => c(`/creds/${b.id}`, { authorization: a.token }));
  denied('a valid token on an unknown session id', () => c('/creds/000000000000', { authorization: a.token }));
  denied('the token in the query string instead', () => c(`${creds()}?authorization=${a.token}`, {}));
  denied('the IMDS token instead', () => c(creds(), { authorization: imdsTokenA }));
  denied('no token on the role-arn route', () => c(`${creds()}/role-arn/${ROLE}`, {}));
  denied("another session's token on the role-arn route", () => c(`${creds()}/role-arn/${ROLE}`, { authorization: b.token }));
  hostileRaw('token: duplicated Authorization, wrong one first', 403, 'ACCESS_DENIED', () =>
    `GET ${creds()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: wrong\r\nAuthorization: ${a.token}\r\nConnection: close\r\n\r\n`,
  );

  // --- Host (DNS rebinding) --------------------------------------------------------------------
  for (const host of ['evil.example', 'rebind.attacker.example:PORT', 'localhost:PORT', '127.0.0.1', '127.0.0.1:OTHER', '[::1]:PORT', '127.0.0.1:PORT.', '127.1:PORT', '0x7f000001:PORT', '127.0.0.1:PORT, evil.example']) {
    hostile(`host: ${host}`, 403, 'HOST_NOT_ALLOWED', () =>
      c(creds(), withToken({ host: host.replace('OTHER', String(port + 1)).replace('PORT', String(port)) })),
    );
  }
  hostileRaw('host: none on HTTP/1.1', 403, 'HOST_NOT_ALLOWED', () => `GET ${creds()} HTTP/1.1\r\nAuthorization: ${a.token}\r\nConnection: close\r\n\r\n`);
  hostileRaw('host: none on HTTP/1.0', 403, 'HOST_NOT_ALLOWED', () => `GET ${creds()} HTTP/1.0\r\nAuthorization: ${a.token}\r\n\r\n`);
  hostileRaw('host: two Host headers, evil first', 403, 'HOST_NOT_ALLOWED', () =>
    `GET ${creds()} HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\r\nConnection: close\r\n\r\n`,
  );

  // --- Origin (browsers) -------------------------------------------------------------------------
  for (const origin of ['https://evil.example', 'null', 'http://127.0.0.1:PORT', 'http://localhost:PORT']) {
    hostile(`origin: ${origin}`, 403, 'ORIGIN_NOT_ALLOWED', () => c(creds(), withToken({ origin: origin.replace('PORT', String(port)) })));
  }
  // A preflight carries no token: refused at the token check, and with no CORS header either.
  hostile('origin: a CORS preflight', 403, 'ACCESS_DENIED', () =>
    c(creds(), { origin: 'https://evil.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }, 'OPTIONS'),
  );
  hostile('origin: on the role-arn route', 403, 'ORIGIN_NOT_ALLOWED', () => c(`${creds()}/role-arn/${ROLE}`, withToken({ origin: 'https://evil.example' })));

  // --- peers that are not loopback (their own test: they need a non-loopback address) -----------
  const from = (spec: Omit<HttpSpec, 'agent'>) => ({ ...spec, localAddress: requirePeer() });
  const fromPeer = (name: string, status: number, code: string, spec: () => Omit<HttpSpec, 'agent'>) =>
    hostile(`peer: ${peer ?? 'non-loopback'} ${name}`, status, code, () => from(spec()), { list: peerCaseList });
  fromPeer('with the right token', 403, 'PEER_NOT_ALLOWED', () => c(creds(), withToken()));
  fromPeer('on the role-arn route', 403, 'PEER_NOT_ALLOWED', () => c(`${creds()}/role-arn/${ROLE}`, withToken()));
  fromPeer('without a token', 403, 'ACCESS_DENIED', () => c(creds(), {}));
  fromPeer('asking IMDS for a token', 403, 'PEER_NOT_ALLOWED', () => ({
    port: ia.port,
    path: '/latest/api/token',
    method: 'PUT',
    headers: { host: `127.0.0.1:${ia.port}`, 'x-aws-ec2-metadata-token-ttl-seconds': '21600' },
  }));
  fromPeer('with a valid IMDS token', 403, 'PEER_NOT_ALLOWED', () => ({
    port: ia.port,
    path: `${IMDS_CREDS}account-a`,
    headers: { host: `127.0.0.1:${ia.port}`, 'x-aws-ec2-metadata-token': imdsTokenA },
  }));

  // --- methods -------------------------------------------------------------------------------------
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND']) {
    hostile(`method: ${method}`, 405, 'METHOD_NOT_ALLOWED', () => c(creds(), withToken(), method));
  }
  hostile('method: HEAD', 405, 'METHOD_NOT_ALLOWED', () => c(creds(), withToken(), 'HEAD'), { head: true });
  hostile('method: POST on the role-arn route', 405, 'METHOD_NOT_ALLOWED', () => c(`${creds()}/role-arn/${ROLE}`, withToken(), 'POST'));
  hostileRaw('method: CONNECT', 405, 'METHOD_NOT_ALLOWED', () => `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\r\n\r\n`);
  hostileRaw('method: not a method at all', 400, 'BAD_REQUEST', () => `FOO ${creds()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\r\nConnection: close\r\n\r\n`);

  // --- bodies ----------------------------------------------------------------------------------------
  hostile('body: GET with Content-Length', 400, 'BODY_NOT_ALLOWED', () => c(creds(), withToken({ 'content-length': '5' }), 'GET', 'hello'));
  hostile('body: GET chunked', 400, 'BODY_NOT_ALLOWED', () => c(creds(), withToken({ 'transfer-encoding': 'chunked' }), 'GET', 'hello'));
  hostile('body: GET with 64 KiB', 400, 'BODY_NOT_ALLOWED', () => c(creds(), withToken({ 'content-length': String(65_536) }), 'GET', 'x'.repeat(65_536)));
  hostile('body: POST with JSON', 405, 'METHOD_NOT_ALLOWED', () => c(creds(), withToken({ 'content-type': 'application/json', 'content-length': '2' }), 'POST', '{}'));
  hostileRaw('body: Content-Length and Transfer-Encoding (smuggling)', 400, 'BAD_REQUEST', () =>
    `GET ${creds()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  );
  hostileRaw('body: Expect 100-continue', 400, 'BODY_NOT_ALLOWED', () =>
    `GET ${creds()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`,
  );
  hostileRaw('headers: an Expect the server cannot meet', 417, 'EXPECTATION_FAILED', () =>
    `GET ${creds()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\r\nExpect: something-else\r\nConnection: close\r\n\r\n`,
  );

  // --- oversized and malformed headers -----------------------------------------------------------------
  hostileRaw('headers: one 10 KB header', 431, 'HEADERS_TOO_LARGE', () =>
    `GET ${creds()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`,
  );
  hostileRaw('headers: 300 small headers', 431, 'HEADERS_TOO_LARGE', () =>
    `GET ${creds()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\r\n${Array.from({ length: 300 }, (_, i) => `X-H${i}: ${'v'.repeat(30)}\r\n`).join('')}\r\n`,
  );
  hostileRaw('headers: a 9,000-character URL', 431, 'HEADERS_TOO_LARGE', () =>
    `GET ${creds()}/role-arn/${'a'.repeat(9_000)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\r\n\r\n`,
  );
  hostileRaw('headers: a NUL in the token', 400, 'BAD_REQUEST', () => `GET ${creds()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${a.token}\0\r\n\r\n`);
  hostileRaw('headers: a line without a colon', 400, 'BAD_REQUEST', () => `GET ${creds()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization ${a.token}\r\n\r\n`);
  hostileRaw('headers: TLS on the plain port', 400, 'BAD_REQUEST', () => '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03');
  hostileRaw('headers: an HTTP/2 preface', 400, 'BAD_REQUEST', () => 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

  // --- path tricks (with the right token: nothing but that session's own answers) -------------------------
  const role = (rest: string) => `${creds()}/role-arn/${rest}`;
  const badArn = (name: string, path: () => string) => hostile(`path: ${name}`, 400, 'BAD_REQUEST', () => c(path(), withToken()));
  badArn('../ out of role-arn into another session', () => role(`../../creds/${b.id}`));
  badArn('encoded ../ out of role-arn', () => role(`..%2F..%2Fcreds%2F${b.id}`));
  badArn('role-arn with nothing after it', () => role(''));
  badArn('a user ARN', () => role('arn:aws:iam::222222222222:user/someone'));
  badArn('an 11-digit account', () => role('arn:aws:iam::22222222222:role/x'));
  badArn('an ARN with a NUL', () => role('arn:aws:iam::222222222222:role/x%00'));
  badArn('an ARN with CR LF (header injection)', () => role('arn:aws:iam::222222222222:role/x%0d%0aSet-Cookie:%20a=b'));
  badArn('an ARN with a space', () => role('arn:aws:iam::222222222222:role/x%20y'));
  badArn('an overlong ARN (2,100 characters)', () => role(`arn:aws:iam::222222222222:role/${'a'.repeat(2_070)}`));
  badArn('an ARN of 1,200 path segments', () => role(`arn:aws:iam::222222222222:role/${'a/'.repeat(1_050)}x`));
  badArn('another partition', () => role('arn:aws-evil:iam::222222222222:role/x'));
  hostile('path: an ARN of 3,000 characters', 400, 'BAD_REQUEST', () => c(role(`arn:aws:iam::222222222222:role/${'a'.repeat(3_000)}`), withToken()));
  hostile('path: encoded slashes into the session id', 403, 'ACCESS_DENIED', () => c(`/creds/${a.id}%2F..%2F${b.id}`, withToken()));
  hostile('path: /creds/A/../B', 404, 'NOT_FOUND', () => c(`/creds/${a.id}/../${b.id}`, withToken()));
  hostile('path: double slash before the id', 404, 'NOT_FOUND', () => c(`/creds//${a.id}`, withToken()));
  hostile('path: leading double slash', 404, 'NOT_FOUND', () => c(`//creds/${a.id}`, withToken()));
  hostile('path: double slash before role-arn', 404, 'NOT_FOUND', () => c(`${creds()}//role-arn/${ROLE}`, withToken()));
  hostile('path: trailing slash', 404, 'NOT_FOUND', () => c(`${creds()}/`, withToken()));
  hostile('path: /creds without an id', 404, 'NOT_FOUND', () => c('/creds', withToken()));
  hostile('path: the root', 404, 'NOT_FOUND', () => c('/', withToken()));
  hostile('path: an IMDS path on the container port', 404, 'NOT_FOUND', () => c(`${IMDS_CREDS}account-a`, withToken()));

  // --- IMDSv2 ----------------------------------------------------------------------------------------------
  const imds = (path: string, headers: Record<string, string | null>, method = 'GET', body?: string, p = ia.port) => ({
    port: p,
    path,
    method,
    headers: { host: `127.0.0.1:${p}`, ...headers },
    ...(body !== undefined ? { body } : {}),
  });
  const unauthorized = (name: string, spec: () => Omit<HttpSpec, 'agent'>) => hostile(`imds: ${name}`, 401, 'UNAUTHORIZED', spec);
  unauthorized('credentials without a token (IMDSv1)', () => imds(`${IMDS_CREDS}account-a`, {}));
  unauthorized('role list without a token', () => imds(IMDS_CREDS, {}));
  unauthorized('iam/info without a token', () => imds('/latest/meta-data/iam/info', {}));
  unauthorized('identity document without a token', () => imds('/latest/dynamic/instance-identity/document', {}));
  unauthorized('credentials with a garbage token', () => imds(`${IMDS_CREDS}account-a`, { 'x-aws-ec2-metadata-token': 'garbage' }));
  unauthorized('credentials with an expired token', () => imds(`${IMDS_CREDS}account-a`, { 'x-aws-ec2-metadata-token': expiredImdsToken }));
  unauthorized("credentials with another session's IMDS token", () => imds(`${IMDS_CREDS}account-a`, { 'x-aws-ec2-metadata-token': imdsTokenB }));
  unauthorized('credentials with a truncated token', () => imds(`${IMDS_CREDS}account-a`, { 'x-aws-ec2-metadata-token': imdsTokenA.slice(0, -2) }));
  unauthorized('credentials with a forged expiry', () => {
    const mac = imdsTokenA.slice(imdsTokenA.indexOf('.') + 1);
    return imds(`${IMDS_CREDS}account-a`, { 'x-aws-ec2-metadata-token': `${(clock.now() + 1e9).toString(36)}.${mac}` });
  });
  unauthorized('credentials with the container token', () => imds(`${IMDS_CREDS}account-a`, { 'x-aws-ec2-metadata-token': a.token }));
  for (const ttl of [null, '0', '21601', '-1', 'abc', '1.5', '', '99999999999', ' 60x']) {
    hostile(`imds: token PUT with TTL ${ttl === null ? 'missing' : JSON.stringify(ttl)}`, 400, 'BAD_REQUEST', () =>
      imds('/latest/api/token', ttl === null ? {} : { 'x-aws-ec2-metadata-token-ttl-seconds': ttl }, 'PUT'),
    );
  }
  const ttl = { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' };
  hostile('imds: token PUT with X-Forwarded-For', 403, 'ACCESS_DENIED', () => imds('/latest/api/token', { ...ttl, 'x-forwarded-for': '203.0.113.7' }, 'PUT'));
  hostile('imds: token PUT with a wrong Host', 403, 'HOST_NOT_ALLOWED', () => imds('/latest/api/token', { ...ttl, host: '169.254.169.254' }, 'PUT'));
  hostile('imds: token PUT with an Origin', 403, 'ORIGIN_NOT_ALLOWED', () => imds('/latest/api/token', { ...ttl, origin: 'https://evil.example' }, 'PUT'));
  hostile('imds: token PUT with a body', 400, 'BODY_NOT_ALLOWED', () => imds('/latest/api/token', { ...ttl, 'content-length': '4' }, 'PUT', 'body'));
  hostile('imds: token by GET', 405, 'METHOD_NOT_ALLOWED', () => imds('/latest/api/token', ttl));
  hostile('imds: token by POST (SSRF-style)', 405, 'METHOD_NOT_ALLOWED', () => imds('/latest/api/token', ttl, 'POST'));
  hostile('imds: credentials by POST', 405, 'METHOD_NOT_ALLOWED', () => imds(`${IMDS_CREDS}account-a`, { 'x-aws-ec2-metadata-token': imdsTokenA }, 'POST'));
  hostile('imds: credentials with a wrong Host', 403, 'HOST_NOT_ALLOWED', () => imds(`${IMDS_CREDS}account-a`, { 'x-aws-ec2-metadata-token': imdsTokenA, host: '169.254.169.254' }));
  hostile('imds: credentials with an Origin', 403, 'ORIGIN_NOT_ALLOWED', () => imds(`${IMDS_CREDS}account-a`, { 'x-aws-ec2-metadata-token': imdsTokenA, origin: 'null' }));
  hostile('imds: credentials of another role name', 404, 'NOT_FOUND', () => imds(`${IMDS_CREDS}account-b`, { 'x-aws-ec2-metadata-token': imdsTokenA }));
  hostile('imds: credentials of a ../ role name', 404, 'NOT_FOUND', () => imds(`${IMDS_CREDS}..%2Faccount-a`, { 'x-aws-ec2-metadata-token': imdsTokenA }));
  hostile("imds: B's token on B's credential path at A's listener", 401, 'UNAUTHORIZED', () => imds(`${IMDS_CREDS}account-b`, { 'x-aws-ec2-metadata-token': imdsTokenB }));
  hostile('imds: a container path on the IMDS port', 404, 'NOT_FOUND', () => imds(`/creds/${a.id}`, { authorization: a.token }));
}

async function imdsToken(p: number, ttlSeconds = '21600', agent?: Agent): Promise<string> {
  const reply = await httpRequest({
    port: p,
    path: '/latest/api/token',
    method: 'PUT',
    headers: { 'x-aws-ec2-metadata-token-ttl-seconds': ttlSeconds },
    ...(agent ? { agent } : {}),
  });
  expect(reply.status, reply.body).toBe(200);
  expect(reply.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe(ttlSeconds);
  return reply.body;
}

function imdsCredentials(token: string, agent?: Agent, p = ia.port): Promise<Reply> {
  return httpRequest({ port: p, path: `${IMDS_CREDS}account-a`, headers: { 'x-aws-ec2-metadata-token': token }, ...(agent ? { agent } : {}) });
}

function containerCredentials(session: Created, agent?: Agent, path = `/creds/${session.id}`): Promise<Reply> {
  return httpRequest({ port, path, headers: { authorization: session.token }, ...(agent ? { agent } : {}) });
}

/** Collects V8 garbage so heap figures compare like with like. */
function collect(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
}

/**
 * What this process holds, after a collection: its RSS, V8's used heap, and the physical size of
 * V8's young generation. V8 sizes the young generation by how fast the program allocates and keeps
 * it committed afterwards: on Node 24 the storm grows it from about 57 MB to 118 MB, which is
 * reused memory, not a leak (a second storm of 10,000 adds 8 MB of RSS; heapUsed stays flat).
 * Node 20's V8 caps it much lower. So the RSS bound is on what lies outside the young generation:
 * native memory (sockets, buffers, parser state) and V8's old generation.
 */
function memory(): { rss: number; heapUsed: number; youngGeneration: number } {
  collect();
  const { rss, heapUsed } = process.memoryUsage();
  const youngGeneration = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.physical_space_size ?? 0;
  return { rss, heapUsed, youngGeneration };
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** Runs cases on a fresh connection and over keep-alive; returns what was wrong with each reply. */
async function refusalProblems(cases: HostileCase[]): Promise<string[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const failures: string[] = [];
  try {
    for (const test of cases) {
      for (const mode of [undefined, agent]) {
        const reply = await test.send(mode);
        const problems = rejectionProblems(reply, test.status, test.code, test.head);
        if (problems.length > 0) failures.push(`${test.name} (${mode ? 'keep-alive' : 'fresh'}): ${problems.join('; ')}`);
      }
    }
  } finally {
    agent.destroy();
  }
  return failures;
}

describe('endpoint abuse against a live daemon: nothing but the legitimate client gets credentials', () => {
  beforeAll(async () => {
    // peerPids on, as in production: every connection also starts a /proc lookup.
    f = await startTestDaemon({ captureLog: false, peerPids: true });
    clock = f.clock as ManualClock;
    port = f.daemon.port;
    a = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    b = await f.client.createSession({ profile: 'account-b', kind: 'ecs' });
    const createdIa = await f.client.createSession({ profile: 'account-a', kind: 'imds' });
    const createdIb = await f.client.createSession({ profile: 'account-b', kind: 'imds' });
    ia = { ...createdIa, port: portOf(createdIa.imdsEndpoint) };
    ib = { ...createdIb, port: portOf(createdIb.imdsEndpoint) };
    for (const s of [a, b, ia, ib]) secrets.add(s.token);
    imdsTokenA = await imdsToken(ia.port);
    imdsTokenB = await imdsToken(ib.port);
    expiredImdsToken = await imdsToken(ia.port, '1');
    clock.advance(2_000); // the injected clock: the 1 s token is now expired, nothing else is
    secrets.add(imdsTokenA);
    secrets.add(imdsTokenB);
    buildCases();
  });

  afterAll(async () => {
    await f?.close();
  });

  it('the legitimate clients are served (the baseline every refusal below is compared with)', async () => {
    credentialsOf(await containerCredentials(a));
    credentialsOf(await containerCredentials(b));
    credentialsOf(await imdsCredentials(imdsTokenA));
    credentialsOf(await httpRequest({ port: ib.port, path: `${IMDS_CREDS}account-b`, headers: { 'x-aws-ec2-metadata-token': imdsTokenB } }));
  });

  it('every hostile request is refused with JSON {Code, Message} and the right status, on a fresh connection and over keep-alive', async () => {
    expect(caseList.length).toBeGreaterThan(100);
    const failures = await refusalProblems(caseList);
    console.log(`FIGURE endpointAbuse cases=${caseList.length}`);
    expect(failures).toEqual([]);
  });

  it('a peer that is not loopback is refused even with the right token and Host: 403 PEER_NOT_ALLOWED on every route', async () => {
    const address = requirePeer();
    expect(peerCaseList).toHaveLength(5);
    const failures = await refusalProblems(peerCaseList);
    console.log(`FIGURE endpointAbuse peerCases=${peerCaseList.length} peer=${address}`);
    expect(failures).toEqual([]);
  });

  it('a token holder gets only its own session: query strings are ignored, role-arn assumes exactly the ARN in the path', async () => {
    const session = f.daemon.registry.get(a.id)!;
    const own = credentialsOf(await containerCredentials(a, undefined, `/creds/${a.id}?x=../../creds/${b.id}`));
    expect(own.AccessKeyId).toBe(credentialsOf(await containerCredentials(a)).AccessKeyId);
    const source = f.factory.sources.find((s) => s.profile === 'account-a')!;
    credentialsOf(await containerCredentials(a, undefined, `/creds/${a.id}/role-arn/${ROLE}?../../creds/${b.id}`));
    credentialsOf(await containerCredentials(a, undefined, `/creds/${a.id}/role-arn/${ROLE.replace('role/', 'role%2F')}`));
    expect([...source.assumeCalls.keys()]).toEqual([ROLE]);
    expect(session.requestsServed).toBeGreaterThanOrEqual(4);
  });

  it(`a hundred distinct role ARNs are each answered, and the session keeps at most ${MAX_ROLE_CACHES} role caches, dropping the oldest`, async () => {
    const session = f.daemon.registry.get(a.id)!;
    const source = f.factory.sources.find((s) => s.profile === 'account-a')!;
    const flood = (i: number) => `arn:aws:iam::222222222222:role/flood-${i}`;
    for (let i = 0; i < 100; i++) {
      credentialsOf(await containerCredentials(a, undefined, `/creds/${a.id}/role-arn/${flood(i)}`));
      expect(session.roleCacheCount).toBeLessThanOrEqual(MAX_ROLE_CACHES);
    }
    expect(session.roleCacheCount).toBe(MAX_ROLE_CACHES);
    // The newest ARN is still cached (no new AssumeRole); the first was evicted (a new one).
    credentialsOf(await containerCredentials(a, undefined, `/creds/${a.id}/role-arn/${flood(99)}`));
    credentialsOf(await containerCredentials(a, undefined, `/creds/${a.id}/role-arn/${flood(0)}`));
    expect(source.assumeCalls.get(flood(99))).toBe(1);
    expect(source.assumeCalls.get(flood(0))).toBe(2);
  });

  it('an IMDS token expires on the injected clock, even on a keep-alive connection that already proved it', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const token = await imdsToken(ia.port, '60', agent);
      credentialsOf(await imdsCredentials(token, agent));
      credentialsOf(await imdsCredentials(token, agent));
      clock.advance(61_000);
      const refused = await imdsCredentials(token, agent);
      expect(rejectionProblems(refused, 401, 'UNAUTHORIZED')).toEqual([]);
      const fresh = await imdsToken(ia.port, '60', agent);
      credentialsOf(await imdsCredentials(fresh, agent));
    } finally {
      agent.destroy();
    }
  });

  it('nothing reaches the listener on a non-loopback address: the connection is refused', async () => {
    const address = requirePeer();
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, address, () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('a process in another network namespace (a container, say) cannot reach the listener on its own 127.0.0.1', () => {
    // Its loopback is up, so ECONNREFUSED means "nothing listens here", not "no network at all".
    const probe = `require('net').connect(${port}, '127.0.0.1').on('connect', () => { console.log('connected'); process.exit(0) }).on('error', (e) => { console.log(e.code); process.exit(0) })`;
    const ns = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" -e "$1"', process.execPath, probe], { encoding: 'utf8', timeout: 10_000 });
    const why = (ns.stderr || String(ns.error ?? '')).trim().split('\n')[0];
    expect(ns.status, `this test needs root (unshare -n) and iproute2 (ip link); CI runs as root. unshare said: ${why}`).toBe(0);
    expect(ns.stdout.trim()).toBe('ECONNREFUSED');
    console.log(`FIGURE endpointAbuse netns=ran result=${ns.stdout.trim()}`);
  });

  it('slow headers (slowloris) are cut off with a JSON 408 and do not hold up other clients', async () => {
    const server = f.daemon.server.server;
    expect(server.headersTimeout).toBe(HEADERS_TIMEOUT_MS);
    // The production bound is 5 s; the test lowers it on the live listener to stay short. What is
    // proved is that node's connection checker actually enforces it on this listener.
    server.headersTimeout = 400;
    const started = Date.now();
    try {
      const slow = Array.from({ length: 30 }, () =>
        new Promise<{ reply: Reply; ms: number; closedByServer: boolean }>((resolve) => {
          const socket = connect(port, '127.0.0.1', () => socket.write(`GET /creds/${a.id} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`));
          const chunks: Buffer[] = [];
          const drip = setInterval(() => socket.writable && socket.write('X-Slow: y\r\n'), 50);
          const finish = (closedByServer: boolean) => {
            clearInterval(drip);
            clearTimeout(giveUp);
            socket.destroy();
            resolve({ reply: parseResponse(Buffer.concat(chunks)), ms: Date.now() - started, closedByServer });
          };
          // Ten times the lowered headersTimeout: a server that never cuts the client off ends here.
          const giveUp = setTimeout(() => finish(false), 4_000);
          socket.on('data', (c: Buffer) => chunks.push(c));
          socket.on('close', () => finish(true));
          socket.on('error', () => undefined);
        }),
      );
      // Meanwhile the legitimate client is served at once.
      for (let i = 0; i < 20; i++) credentialsOf(await containerCredentials(a));
      const results = await Promise.all(slow);
      const worst = Math.max(...results.map((r) => r.ms));
      console.log(`FIGURE endpointAbuse slowloris connections=${results.length} headersTimeout=400ms closedWithin=${worst}ms`);
      for (const { reply, closedByServer } of results) {
        expect(closedByServer, 'the server never closed a slow client (we gave up after 4 s)').toBe(true);
        expect(rejectionProblems(reply, 408, 'REQUEST_TIMEOUT')).toEqual([]);
      }
    } finally {
      server.headersTimeout = HEADERS_TIMEOUT_MS;
    }
  });

  it('10,000 hostile requests in a row: the legitimate client is always served, no hostile request gets credentials, memory stays flat', async () => {
    const random = seededRandom(5);
    // The peer cases join the storm when this machine can send them (their own test requires it).
    const stormCases = peer === undefined ? caseList : [...caseList, ...peerCaseList];
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 16 });
    const legitAgent = new Agent({ keepAlive: true, maxSockets: 2 });
    const tally = new Map<string, number>();
    const failures: string[] = [];
    let sent = 0;
    let viaKeepAlive = 0;
    const storm = async (count: number) => {
      let next = 0;
      const worker = async () => {
        while (next < count) {
          next++;
          const test = stormCases[Math.floor(random() * stormCases.length)]!;
          const useKeepAlive = random() < 0.5;
          if (useKeepAlive) viaKeepAlive++;
          const reply = await test.send(useKeepAlive ? keepAlive : undefined);
          sent++;
          const key = `${reply.status} ${reply.noResponse ? '(none)' : (safeCode(reply.body) ?? (test.head ? test.code : '?'))}`;
          tally.set(key, (tally.get(key) ?? 0) + 1);
          const problems = rejectionProblems(reply, test.status, test.code, test.head);
          if (problems.length > 0 && failures.length < 20) failures.push(`${test.name}: ${problems.join('; ')}`);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    };

    // Warm up (JIT, fastify's caches, agent sockets), then measure.
    await storm(1_000);
    tally.clear();
    sent = 0;
    viaKeepAlive = 0;
    const before = memory();

    let stormDone = false;
    let legit = 0;
    let legitImds = 0;
    const legitFailures: string[] = [];
    const legitimate = (async () => {
      let imdsToken_ = imdsTokenA;
      while (!stormDone) {
        const n = legit + legitImds;
        try {
          if (n % 5 === 4) {
            credentialsOf(await imdsCredentials(imdsToken_, n % 2 ? legitAgent : undefined));
            legitImds++;
          } else {
            credentialsOf(await containerCredentials(n % 3 ? a : b, n % 7 ? legitAgent : undefined));
            legit++;
          }
        } catch (error) {
          legitFailures.push(String(error));
          if (legitFailures.length > 5) break;
          imdsToken_ = imdsTokenA;
        }
      }
    })();
    await storm(10_000);
    stormDone = true;
    await legitimate;
    keepAlive.destroy();
    legitAgent.destroy();

    const after = memory();
    const counts = [...tally].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k.replace(' ', ':')}=${v}`).join(' ');
    console.log(
      `FIGURE endpointAbuse hostile=${sent} keepalive=${viaKeepAlive} fresh=${sent - viaKeepAlive} legit=${legit + legitImds} (container=${legit} imds=${legitImds}) ok ` +
        `rssBefore=${mb(before.rss)}MB rssAfter=${mb(after.rss)}MB heapBefore=${mb(before.heapUsed)}MB heapAfter=${mb(after.heapUsed)}MB ` +
        `youngGenerationBefore=${mb(before.youngGeneration)}MB youngGenerationAfter=${mb(after.youngGeneration)}MB`,
    );
    console.log(`FIGURE endpointAbuse rejections ${counts}`);
    expect(failures).toEqual([]);
    expect(legitFailures).toEqual([]);
    expect(sent).toBe(10_000);
    expect(tally.get('200 ?') ?? 0).toBe(0);
    expect([...tally.keys()].filter((k) => k.startsWith('200'))).toEqual([]);
    expect(legit + legitImds).toBeGreaterThan(100);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(30 * 1024 * 1024);
    expect(after.rss - after.youngGeneration - (before.rss - before.youngGeneration)).toBeLessThan(30 * 1024 * 1024);
    // 11,000 requests, half on fresh connections (each decided by a read of /proc/net/tcp): about
    // 16 s on a quiet 2-vCPU machine, past 30 s when other suites load it. A bound on a hang, not
    // a timing requirement.
  }, 120_000);

  it('no secret in the daemon log, audit log, state files or process arguments; the audit trail names only what was served', async () => {
    const cmdline = cmdlineOf(process.pid);
    await f.daemon.stop();
    logText = readFileSync(f.daemon.paths.logFile, 'utf8');
    const audit = logText
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { audit?: string; session?: string; route?: string })
      .filter((r) => r.audit === 'credentials-served');
    // Every line names a session of ours on a credential route; no refused request is in it.
    for (const line of audit) expect([a.id, b.id, ia.id, ib.id]).toContain(line.session);
    // Not equal: lines whose client-pid lookup is still queued when the daemon stops are lost
    // (a bug in the audit log's shutdown, reported in FIGURES.md). Never more lines than answers.
    expect(audit.length).toBeLessThanOrEqual(credentialsServed);
    expect(audit.length).toBeGreaterThan(credentialsServed * 0.9);
    const leaks = findLeaks(secrets, { 'daemon.log': logText, 'cmdline of this process (the daemon)': cmdline }, [f.stateDir]);
    console.log(`FIGURE endpointAbuse leakScan secrets=${secrets.size} auditLines=${audit.length} served=${credentialsServed} auditLinesLostAtStop=${credentialsServed - audit.length} leaks=${leaks.length}`);
    expect(leaks).toEqual([]);
  });
});

function safeCode(body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { Code?: unknown }).Code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}
