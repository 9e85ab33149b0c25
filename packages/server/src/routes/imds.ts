import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatExpiration, isVaultError, type Clock } from '@vault/core';
import { ALL_METHODS, checkFastifyRequest, checkRequest, sendError, sendRejection, type Rejection } from '../httpApp.js';
import type { AuditLog } from '../logging.js';
import type { PeerSocket } from '../peerPid.js';
import type { PreparedCredentials } from '../sessions/refreshingCredentials.js';
import type { Session } from '../sessions/session.js';
import { accountIdOf, errorResponses, imdsCredentialsSchema } from '../wire.js';

/** The TTL bounds EC2 enforces on `PUT /latest/api/token` (1 s to 6 h). */
export const IMDS_TOKEN_MIN_TTL_SECONDS = 1;
export const IMDS_TOKEN_MAX_TTL_SECONDS = 21_600;

const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aws-ec2-metadata-token';

/**
 * IMDSv2 session tokens without server state: `<expiry base36>.<HMAC(expiry)>` under a key that
 * lives only in this listener. Verifying recomputes the MAC and compares digests in constant time,
 * so the set of live tokens needs no bound and no cleanup.
 */
/**
 * The key that signs a session's IMDSv2 tokens, derived from the session's own token (32 random
 * bytes, kept only in memory and the keyring). A daemon that restores the session after a crash
 * derives the same key, so the tokens its clients hold keep working — as EC2's do across a
 * metadata-service restart — while no other session, and nothing without the session token, can
 * make or check one.
 */
export function imdsTokenKey(sessionToken: string): Buffer {
  return createHmac('sha256', sessionToken).update('vault IMDSv2 session-token key v1').digest();
}

export class ImdsTokens {
  private readonly key: Buffer;

  constructor(
    private readonly clock: Clock,
    key: Buffer = randomBytes(32),
  ) {
    this.key = key;
  }

  issue(ttlSeconds: number): string {
    const payload = (this.clock.now() + ttlSeconds * 1000).toString(36);
    return `${payload}.${this.mac(payload)}`;
  }

  verify(token: string | undefined): boolean {
    return this.expiryOf(token) !== undefined;
  }

  /** When a valid, unexpired token expires (epoch ms); undefined for anything else. */
  expiryOf(token: string | undefined): number | undefined {
    if (typeof token !== 'string') return undefined;
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const payload = token.slice(0, dot);
    const presented = createHash('sha256').update(token.slice(dot + 1)).digest();
    const expected = createHash('sha256').update(this.mac(payload)).digest();
    if (!timingSafeEqual(presented, expected)) return undefined;
    const expiresAt = parseInt(payload, 36);
    return Number.isFinite(expiresAt) && this.clock.now() < expiresAt ? expiresAt : undefined;
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

export interface ImdsRoutesOptions {
  /** `127.0.0.1:PORT` of this IMDS listener. */
  expectedHost: () => string;
  /** The listener's token issuer (the credential route checks what it issues). */
  tokens: ImdsTokens;
  /** The credential route's logic, shared with the listener's fast path. */
  route: ImdsCredentialRoute;
}

/** The single role name an IMDS session lists. */
export function imdsRoleName(profile: string): string {
  return /^[\w+=,.@-]{1,64}$/.test(profile) ? profile : 'vault-credentials';
}

/** A stable fake instance id per session (`i-` and 17 hex digits, as EC2 prints them). */
export function instanceIdOf(sessionId: string): string {
  return `i-${createHash('sha256').update(sessionId).digest('hex').slice(0, 17)}`;
}

/** What a GET without a live token gets, as from EC2. */
const TOKEN_REQUIRED: Rejection = {
  status: 401,
  code: 'UNAUTHORIZED',
  message: 'a valid X-aws-ec2-metadata-token is required (PUT /latest/api/token first)',
};

/** The content type of a credential answer, as EC2's. */
const CONTENT_TYPE = 'text/plain';

export interface ImdsCredentialRouteOptions {
  session: Session;
  /** `127.0.0.1:PORT` of this IMDS listener. */
  expectedHost: () => string;
  clock: Clock;
  audit: AuditLog;
  /** The listener's token issuer. */
  tokens: ImdsTokens;
  /** Name in the role list; defaults to the profile when it is a valid IAM role name. */
  roleName?: string;
}

/**
 * The IMDS credential route's logic, once: the token check and guards of every GET, and the
 * credentials route itself. The fastify routes (every request) and the fast path (the hot request,
 * before fastify routes it) both call it, so they refuse the same requests, send the same bytes
 * and headers, and count and audit alike.
 */
export class ImdsCredentialRoute {
  readonly session: Session;
  readonly roleName: string;
  /** The URL path of the role's credentials. */
  readonly path: string;
  /** The headers of a credential answer, for a fastify reply (which adds the length itself). */
  readonly headers = { 'content-type': CONTENT_TYPE } as const;
  private readonly expectedHost: () => string;
  private readonly clock: Clock;
  private readonly audit: AuditLog;
  private readonly tokens: ImdsTokens;
  /**
   * The token each connection last proved, until it expires: recognised by equality, so the HMAC
   * is checked once per connection and token, not once per request — and a connection only ever
   * learns that a token it sent itself was valid.
   */
  private readonly proved = new WeakMap<object, { token: string; expiresAt: number }>();

  constructor(options: ImdsCredentialRouteOptions) {
    this.session = options.session;
    this.roleName = options.roleName ?? imdsRoleName(options.session.profile);
    this.path = `/latest/meta-data/iam/security-credentials/${this.roleName}`;
    this.expectedHost = options.expectedHost;
    this.clock = options.clock;
    this.audit = options.audit;
    this.tokens = options.tokens;
  }

  /** Why this GET may not be answered, or undefined: a live token first (401, as EC2), then the shared guards. */
  refusal(socket: PeerSocket, headers: IncomingHttpHeaders, method: string | undefined): Rejection | undefined {
    if (!this.tokenIsLive(socket, headers[TOKEN_HEADER])) return TOKEN_REQUIRED;
    return checkRequest(headers, method, socket.remoteAddress, this.expectedHost(), 'GET');
  }

  private tokenIsLive(socket: object, header: string | string[] | undefined): boolean {
    const token = Array.isArray(header) ? header[0] : header;
    if (typeof token !== 'string') return false;
    const known = this.proved.get(socket);
    if (known !== undefined && known.token === token && this.clock.now() < known.expiresAt) return true;
    const expiresAt = this.tokens.expiryOf(token);
    if (expiresAt === undefined) return false;
    this.proved.set(socket, { token, expiresAt });
    return true;
  }

  /** The bytes of an answer: serialized once per set of credentials (PreparedCredentials keeps them). */
  body(prepared: PreparedCredentials): Buffer {
    return prepared.imdsBody();
  }

  /** The headers of an answer of `length` bytes, for node's writeHead (a literal: see ContainerCredentialRoute.headersFor). */
  headersFor(length: number): { 'content-type': string; 'content-length': number } {
    return { 'content-type': CONTENT_TYPE, 'content-length': length };
  }

  /** After an answer is sent: the session counts it, the audit trail notes it. */
  served(socket: PeerSocket): void {
    this.session.requestsServed++;
    this.audit.credentialsServed(socket, this.session, 'imds');
  }

  /** The answer when no credentials could be had (SDKs retry on 5xx). */
  unavailable(error: unknown): { status: number; code: string; message: string } {
    return { status: 503, code: isVaultError(error) ? error.code : 'INTERNAL', message: isVaultError(error) ? error.toLine() : 'no credentials are available' };
  }
}

const textSchema = { type: 'string' } as const;
const infoSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    Code: { type: 'string' },
    LastUpdated: { type: 'string' },
    InstanceProfileArn: { type: 'string' },
    InstanceProfileId: { type: 'string' },
  },
} as const;
const identitySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    accountId: { type: 'string' },
    architecture: { type: 'string' },
    availabilityZone: { type: 'string' },
    imageId: { type: 'string' },
    instanceId: { type: 'string' },
    instanceType: { type: 'string' },
    pendingTime: { type: 'string' },
    privateIp: { type: 'string' },
    region: { type: 'string' },
    version: { type: 'string' },
  },
} as const;

/**
 * EC2 instance metadata (IMDSv2) for one session, on that session's own listener:
 *   PUT /latest/api/token                               a token (TTL header 1–21600, echoed)
 *   GET /latest/meta-data/iam/security-credentials/     exactly one role name, no newline
 *   GET /latest/meta-data/iam/security-credentials/NAME the IMDS credential JSON
 *   GET /latest/meta-data/iam/info, /instance-id, /placement/region, /placement/availability-zone
 *   GET /latest/dynamic/instance-identity/document      with the session's region
 * GETs need a live token (401 as EC2 does), then pass the shared guards.
 */
export async function imdsRoutes(app: FastifyInstance, options: ImdsRoutesOptions): Promise<void> {
  const { expectedHost, tokens, route: credentialRoute } = options;
  const { session, roleName } = credentialRoute;
  const instanceId = instanceIdOf(session.id);
  const region = () => session.region ?? 'us-east-1';
  const accountId = () => {
    const latest = session.credentials.latest?.credentials;
    return (latest && accountIdOf(latest)) ?? '000000000000';
  };

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const isTokenRoute = request.routeOptions.url === '/latest/api/token';
    const rejection = isTokenRoute
      ? checkFastifyRequest(request, expectedHost(), 'PUT')
      : credentialRoute.refusal(request.raw.socket, request.headers, request.method);
    if (rejection) {
      sendRejection(reply, rejection);
      return;
    }
    // EC2 refuses token requests that went through a proxy, so a forwarding SSRF cannot mint one.
    if (isTokenRoute && request.headers['x-forwarded-for'] !== undefined) {
      sendError(reply, 403, 'ACCESS_DENIED', 'token requests through a proxy are refused');
      return;
    }
    done();
  });

  const text = (reply: FastifyReply, body: string | Buffer) => reply.header('content-type', 'text/plain').send(body);
  const json = (reply: FastifyReply, body: unknown) => reply.header('content-type', 'application/json').send(body);
  const route = (url: string, response: object, handler: (request: FastifyRequest, reply: FastifyReply) => unknown) =>
    app.route({ method: [...ALL_METHODS], url, schema: { response: { 200: response, ...errorResponses } }, handler: handler as never });

  const served = (request: FastifyRequest, reply: FastifyReply, prepared: PreparedCredentials) => {
    reply.headers(credentialRoute.headers).send(credentialRoute.body(prepared));
    credentialRoute.served(request.raw.socket);
    return reply;
  };

  route('/latest/api/token', textSchema, (request, reply) => {
    const raw = headerValue(request, TTL_HEADER);
    const ttl = raw !== undefined && /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
    if (!(ttl >= IMDS_TOKEN_MIN_TTL_SECONDS && ttl <= IMDS_TOKEN_MAX_TTL_SECONDS)) {
      return sendError(
        reply,
        400,
        'BAD_REQUEST',
        `X-aws-ec2-metadata-token-ttl-seconds must be an integer from ${IMDS_TOKEN_MIN_TTL_SECONDS} to ${IMDS_TOKEN_MAX_TTL_SECONDS}`,
      );
    }
    // Go's SDK reads the echoed TTL to know when to fetch a new token.
    reply.header(TTL_HEADER, String(ttl));
    return text(reply, tokens.issue(ttl));
  });

  route('/latest/meta-data/', textSchema, (_request, reply) =>
    text(reply, ['ami-id', 'iam/', 'instance-id', 'instance-type', 'placement/'].join('\n')),
  );
  // botocore reads the raw body as the role name: exactly one name, no trailing newline.
  route('/latest/meta-data/iam/security-credentials/', textSchema, (_request, reply) => text(reply, roleName));
  route('/latest/meta-data/iam/security-credentials', textSchema, (_request, reply) => text(reply, roleName));

  route('/latest/meta-data/iam/security-credentials/:name', imdsCredentialsSchema, (request, reply) => {
    if ((request.params as { name: string }).name !== roleName) {
      return sendError(reply, 404, 'NOT_FOUND', `no role named ${(request.params as { name: string }).name}; the role is ${roleName}`);
    }
    const ready = session.currentCredentials();
    if (ready) return served(request, reply, ready);
    return session.credentialsFor().then(
      (prepared) => served(request, reply, prepared),
      (error: unknown) => {
        const { status, code, message } = credentialRoute.unavailable(error);
        return sendError(reply, status, code, message);
      },
    );
  });

  route('/latest/meta-data/iam/info', infoSchema, (_request, reply) =>
    json(reply, {
      Code: 'Success',
      LastUpdated: formatExpiration(new Date(session.credentials.latest?.fetchedAt ?? session.createdAt)),
      InstanceProfileArn: `arn:aws:iam::${accountId()}:instance-profile/${roleName}`,
      InstanceProfileId: `AIPA${instanceId.slice(2, 19).toUpperCase()}`,
    }),
  );
  route('/latest/meta-data/instance-id', textSchema, (_request, reply) => text(reply, instanceId));
  route('/latest/meta-data/ami-id', textSchema, (_request, reply) => text(reply, 'ami-00000000000000000'));
  route('/latest/meta-data/instance-type', textSchema, (_request, reply) => text(reply, 't3.micro'));
  route('/latest/meta-data/placement/', textSchema, (_request, reply) => text(reply, 'availability-zone\nregion'));
  route('/latest/meta-data/placement/region', textSchema, (_request, reply) => text(reply, region()));
  route('/latest/meta-data/placement/availability-zone', textSchema, (_request, reply) => text(reply, `${region()}a`));
  route('/latest/dynamic/instance-identity/document', identitySchema, (_request, reply) =>
    json(reply, {
      accountId: accountId(),
      architecture: process.arch === 'arm64' ? 'arm64' : 'x86_64',
      availabilityZone: `${region()}a`,
      imageId: 'ami-00000000000000000',
      instanceId,
      instanceType: 't3.micro',
      pendingTime: formatExpiration(new Date(session.createdAt)),
      privateIp: '127.0.0.1',
      region: region(),
      version: '2017-09-30',
    }),
  );
}

export interface ImdsFastPathOptions {
  route: ImdsCredentialRoute;
  /** True once the app is closing: then fastify answers (503) instead. */
  closing: () => boolean;
}

/**
 * The hot IMDS request — `GET …/security-credentials/NAME` that the route would serve at once,
 * credentials cached — answered before fastify routes it, through the same ImdsCredentialRoute;
 * anything else goes to fastify untouched (see containerFastPath).
 */
export function imdsFastPath(options: ImdsFastPathOptions): (request: IncomingMessage, response: ServerResponse) => boolean {
  const { route, closing } = options;
  const { session, path } = route;
  return (request, response) => {
    if (request.method !== 'GET' || request.url !== path || closing()) return false;
    if (route.refusal(request.socket, request.headers, request.method) !== undefined) return false;
    const ready = session.currentCredentials();
    if (ready === undefined) return false;
    const body = route.body(ready);
    response.writeHead(200, route.headersFor(body.length));
    response.end(body);
    route.served(request.socket);
    return true;
  };
}

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
