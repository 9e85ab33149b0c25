/**
 * A local stand-in for AWS STS: an HTTP server on 127.0.0.1 that speaks the STS query API
 * (GetSessionToken, AssumeRole, GetCallerIdentity) to real clients — the JS SDK, the AWS CLI,
 * botocore — verifying their SigV4 signatures with the keys it issued, enforcing MFA, trust,
 * role-chaining and duration rules the way AWS words them, and answering in AWS's XML shapes.
 * Tests count its calls and inject faults; other processes reach the same through `/__standin/…`.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { formatExpiration, systemClock, type Clock } from '@vault/core';
import { headersFromRaw, verifySigV4, type SignedRequest } from './sigv4.js';
import { trustsWebIdentity, WebIdentityTokens, type WebIdentityTokenOptions, type WebIdentityTrust } from './webIdentityTokens.js';
import { closeServer, listenOnLoopback } from './loopbackServer.js';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface StsStandInOptions {
  /** Issues expirations and judges expiry by this clock. Default: the system clock. */
  clock?: Clock;
  /** Default 0: a random free port. */
  port?: number;
  /**
   * Reject signatures whose X-Amz-Date is more than 15 minutes from `clock.now()` ("Signature
   * expired"). Off by default: clients sign with the wall clock while tests often move a ManualClock.
   */
  checkRequestTime?: boolean;
}

export interface AddUserOptions {
  /** `arn:aws:iam::ACCOUNT:user/NAME`. Adding a user again gives it one more key. */
  arn: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /**
   * The key's first N requests are refused (InvalidClientTokenId), as a key fresh from IAM's
   * CreateAccessKey is for a while: IAM is eventually consistent. Default 0.
   */
  refusedRequests?: number;
}

export interface IssuedKey {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface AddRoleOptions {
  /** `arn:aws:iam::ACCOUNT:role/[PATH/]NAME`. */
  arn: string;
  /** The trust policy requires `aws:MultiFactorAuthPresent`. */
  requireMfa?: boolean;
  /** The role's MaxSessionDuration, 3600–43200. Default 3600. */
  maxSessionDurationSeconds?: number;
  /**
   * Who the trust policy names: principal ARNs (user, role, assumed-role session), account roots
   * (`arn:aws:iam::ACCOUNT:root`), bare account ids or `*`. Default: everyone.
   */
  trustedPrincipals?: string[];
  /** The trust policy's `sts:ExternalId` condition. */
  externalId?: string;
  /** The trust policy's Federated (OIDC) principals for AssumeRoleWithWebIdentity. Default: none. */
  webIdentity?: WebIdentityTrust[];
}

export interface StsTag {
  key: string;
  value: string;
}

/** One request the stand-in answered (or failed on purpose). Never carries a secret or an MFA code. */
export interface StsCall {
  /** The `Action` parameter ('' when missing). */
  action: string;
  /** The key id that signed the request ('' when unsigned or unparseable). */
  accessKeyId: string;
  roleArn?: string;
  roleSessionName?: string;
  serialNumber?: string;
  durationSeconds?: number;
  externalId?: string;
  sourceIdentity?: string;
  tags?: StsTag[];
  transitiveTagKeys?: string[];
  /** GetFederationToken's Name and Policy (a policy is no secret). */
  federatedName?: string;
  policy?: string;
  /** Whether a TokenCode was sent (the code itself is not recorded). */
  tokenCodeSent?: boolean;
  /** AssumeRoleWithWebIdentity: the `sub` of the token presented (the token itself is not recorded). */
  webIdentitySubject?: string;
  ok: boolean;
  errorCode?: string;
  status: number;
  /** The injected fault that answered, if one did. */
  fault?: StsFaultKind['kind'];
  method: string;
  /** `clock.now()` when the request arrived. */
  at: number;
  userAgent?: string;
}

export type StsFaultKind =
  | { kind: 'throttle' }
  | { kind: 'internal' }
  | { kind: 'reset' }
  | { kind: 'delay'; ms: number }
  | { kind: 'malformed' }
  | { kind: 'expiredToken' }
  | { kind: 'accessDenied' };

/** A fault for the next request(s): `times` (default 1) matching requests, optionally only these actions. */
export type StsFault = StsFaultKind & { times?: number; actions?: string[] };

/** What a persistent fault mode sees of a request. */
export interface FaultRequest {
  action: string;
  accessKeyId: string;
  roleArn?: string;
  method: string;
}

export type FaultMode = (request: FaultRequest) => StsFaultKind | undefined;

/** What the stand-in knows about a key, minus its secrets. */
export interface StsKeyInfo {
  accessKeyId: string;
  kind: 'user' | 'session' | 'role';
  /** The principal: a user ARN, or `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`. */
  arn: string;
  account: string;
  userId: string;
  expiration?: Date;
  /** The session was established with MFA (directly or somewhere up its chain). */
  mfaAuthenticated: boolean;
  roleArn?: string;
  roleSessionName?: string;
  /** The session came from a role assuming a role. */
  chained?: boolean;
  /** GetFederationToken's Name, for a federated user's session. */
  federatedName?: string;
  sourceIdentity?: string;
  tags?: StsTag[];
  transitiveTagKeys?: string[];
}

export interface StsStandIn {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** Every request answered since the last reset, oldest first (a copy). */
  readonly calls: readonly StsCall[];
  addUser(options: AddUserOptions): IssuedKey;
  /** Registers an MFA device, or changes the code it currently accepts. */
  addMfaDevice(serial: string, code?: string): void;
  addRole(options: AddRoleOptions): void;
  /** Registers a token an OIDC issuer handed out, for AssumeRoleWithWebIdentity. */
  addWebIdentityToken(options: WebIdentityTokenOptions): void;
  /** Deletes a key (long-term or temporary): later requests with it get InvalidClientTokenId. */
  removeKey(accessKeyId: string): boolean;
  describeKey(accessKeyId: string): StsKeyInfo | undefined;
  /** Calls of `action` (all actions when omitted); only successful ones unless `onlyOk` is false. */
  count(action?: string, onlyOk?: boolean): number;
  resetCalls(): void;
  /** Queues one-shot faults; each applies to the next matching request(s). */
  injectFaults(faults: StsFault[]): void;
  /** A persistent fault ("STS is down"), consulted after the queue; undefined to clear. */
  setFaultMode(mode: FaultMode | undefined): void;
  /** Drops queued faults and the fault mode. */
  clearFaults(): void;
  /** Every secret access key, session token and web identity token the stand-in holds, for leak scans. */
  issuedSecrets(): string[];
  /**
   * For sibling stand-ins (IAM, the federation sign-in endpoint) that share this one's users and
   * keys: who signed a SigV4 request for `service`, checked exactly as STS checks its own. Throws
   * an StsError (InvalidClientTokenId, SignatureDoesNotMatch, ExpiredToken…).
   */
  authenticateRequest(request: SignedRequest, service: string): StsKeyInfo;
  /**
   * The key whose id, secret and token are exactly these, when it is temporary and has not
   * expired (what the sign-in service checks of a Session); undefined otherwise.
   */
  verifyTemporaryCredentials(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string }): StsKeyInfo | undefined;
  /** The ids of a user's long-term keys, oldest first (IAM's ListAccessKeys). */
  userKeyIds(userArn: string): string[];
  /**
   * Mints a session of a role added with addRole, as another AWS service does on STS's behalf (the
   * IAM Identity Center portal's GetRoleCredentials): the keys then work here like AssumeRole's.
   */
  issueRoleSession(roleArn: string, sessionName: string, seconds: number): IssuedKey & { sessionToken: string; expiration: Date };
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

export interface StsFixture {
  users?: AddUserOptions[];
  mfaDevices?: Array<{ serial: string; code?: string }>;
  roles?: AddRoleOptions[];
}

/** The README's Configuration example: the central user with AWS's documentation key, its MFA device, two MFA-protected roles. */
export const demoFixture: StsFixture = {
  users: [
    {
      arn: 'arn:aws:iam::111111111111:user/central-user',
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    },
  ],
  mfaDevices: [{ serial: 'arn:aws:iam::111111111111:mfa/central-user', code: '123456' }],
  roles: [
    { arn: 'arn:aws:iam::222222222222:role/account-a-assume-role', requireMfa: true },
    { arn: 'arn:aws:iam::333333333333:role/account-b-role', requireMfa: true },
  ],
};

/** Loads users, MFA devices and roles; returns the users' keys (generated where the fixture gives none). */
export function loadFixture(standIn: StsStandIn, fixture: StsFixture): Array<IssuedKey & { arn: string }> {
  const keys = (fixture.users ?? []).map((user) => ({ arn: user.arn, ...standIn.addUser(user) }));
  for (const device of fixture.mfaDevices ?? []) standIn.addMfaDevice(device.serial, device.code);
  for (const role of fixture.roles ?? []) standIn.addRole(role);
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

const XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const API_VERSION = '2011-06-15';
const ACTIONS = ['GetSessionToken', 'AssumeRole', 'AssumeRoleWithWebIdentity', 'GetCallerIdentity', 'GetFederationToken'] as const;
type Action = (typeof ACTIONS)[number];
const MAX_BODY = 1024 * 1024;
const FAULT_KINDS: ReadonlyArray<StsFaultKind['kind']> = ['throttle', 'internal', 'reset', 'delay', 'malformed', 'expiredToken', 'accessDenied'];

const USER_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):user\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/;
const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/;

interface User {
  arn: string;
  partition: string;
  account: string;
  userId: string;
}

interface Role {
  arn: string;
  partition: string;
  account: string;
  name: string;
  roleId: string;
  requireMfa: boolean;
  maxSessionDurationSeconds: number;
  trustedPrincipals: string[] | undefined;
  externalId: string | undefined;
  webIdentity: WebIdentityTrust[] | undefined;
}

interface UserKey {
  kind: 'user';
  accessKeyId: string;
  secretAccessKey: string;
  user: User;
  /** Requests still to refuse while the key "propagates" (AddUserOptions.refusedRequests). */
  refusals: number;
}

interface CacheKey {
  kind: 'session';
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: number;
  user: User;
  mfaAuthenticated: boolean;
  /** Set for GetFederationToken's sessions: the federated user's name. */
  federatedName?: string;
}

interface RoleKey {
  kind: 'role';
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: number;
  role: Role;
  sessionName: string;
  mfaAuthenticated: boolean;
  chained: boolean;
  sourceIdentity: string | undefined;
  tags: StsTag[];
  transitiveTagKeys: string[];
}

type KeyRecord = UserKey | CacheKey | RoleKey;

/** An STS error reply (also what authenticateRequest throws to sibling stand-ins). */
export class StsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly type: 'Sender' | 'Receiver' = 'Sender',
  ) {
    super(message);
  }
}

const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function randomFrom(alphabet: string, length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/** AKIA/ASIA + 16 base32 characters, like real access key ids. */
const newAccessKeyId = (prefix: 'AKIA' | 'ASIA') => prefix + randomFrom(KEY_ALPHABET, 16);
const newSecret = () => randomFrom(SECRET_ALPHABET, 40);
/** AIDA (user) / AROA (role) + 17 characters, like real unique ids. */
const newUniqueId = (prefix: 'AIDA' | 'AROA') => prefix + randomFrom(ID_ALPHABET, 17);
/** Real session tokens are long base64 blobs (with `+`, `/`, `=`), a few hundred characters. */
const newSessionToken = () => `IQoJb3JpZ2luX2VjE${randomBytes(300).toString('base64')}`;

export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}

function principalArn(key: KeyRecord): string {
  if (key.kind === 'role') return assumedRoleArn(key.role, key.sessionName);
  if (key.kind === 'session' && key.federatedName !== undefined) return `arn:${key.user.partition}:sts::${key.user.account}:federated-user/${key.federatedName}`;
  return key.user.arn;
}

function assumedRoleArn(role: Role, sessionName: string): string {
  return `arn:${role.partition}:sts::${role.account}:assumed-role/${role.name}/${sessionName}`;
}

/** AWS's "1 validation error detected: …" collector. */
class Validation {
  private readonly errors: string[] = [];
  add(message: string): void {
    this.errors.push(message);
  }
  length(name: string, value: string | undefined, min: number, max: number): void {
    if (value === undefined) return;
    if (value.length < min) this.add(`Value '${value}' at '${name}' failed to satisfy constraint: Member must have length greater than or equal to ${min}`);
    else if (value.length > max) this.add(`Value '${value}' at '${name}' failed to satisfy constraint: Member must have length less than or equal to ${max}`);
  }
  pattern(name: string, value: string | undefined, pattern: RegExp, shown: string): void {
    if (value !== undefined && !pattern.test(value)) {
      this.add(`Value '${value}' at '${name}' failed to satisfy constraint: Member must satisfy regular expression pattern: ${shown}`);
    }
  }
  required(name: string, value: string | undefined): void {
    if (value === undefined) this.add(`Value null at '${name}' failed to satisfy constraint: Member must not be null`);
  }
  range(name: string, value: number | undefined, min: number, max: number): void {
    if (value === undefined) return;
    if (value < min) this.add(`Value '${value}' at '${name}' failed to satisfy constraint: Member must have value greater than or equal to ${min}`);
    else if (value > max) this.add(`Value '${value}' at '${name}' failed to satisfy constraint: Member must have value less than or equal to ${max}`);
  }
  throwIfAny(): void {
    if (this.errors.length === 0) return;
    const n = this.errors.length;
    throw new StsError(400, 'ValidationError', `${n} validation error${n === 1 ? '' : 's'} detected: ${this.errors.join('; ')}`);
  }
}

function validateMfa(params: URLSearchParams, v: Validation): void {
  const serial = params.get('SerialNumber') ?? undefined;
  const code = params.get('TokenCode') ?? undefined;
  v.length('serialNumber', serial, 9, 256);
  v.pattern('serialNumber', serial, /^[\w+=/:,.@-]*$/, '[\\w+=/:,.@-]*');
  v.length('tokenCode', code, 6, 6);
  v.pattern('tokenCode', code, /^\d*$/, '[\\d]*');
}

function parseInteger(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new StsError(400, 'ValidationError', `Value '${raw}' at '${name}' failed to satisfy constraint: Member must be a number`);
  }
  return Number(raw.trim());
}

/** `Prefix.member.N` lists, in N order. */
function memberList(params: URLSearchParams, prefix: string, suffix = ''): Map<number, string> {
  const out = new Map<number, string>();
  const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.member\\.(\\d+)${suffix.replace(/\./g, '\\.')}$`);
  for (const [name, value] of params) {
    const m = re.exec(name);
    if (m) out.set(Number(m[1]), value);
  }
  return new Map([...out].sort(([a], [b]) => a - b));
}

interface Parsed {
  action: string;
  version: string | undefined;
  params: URLSearchParams;
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

class StandIn implements StsStandIn {
  url = '';
  port = 0;
  private readonly users = new Map<string, User>();
  private readonly roles = new Map<string, Role>();
  private readonly mfaDevices = new Map<string, string>();
  private readonly keys = new Map<string, KeyRecord>();
  private readonly webIdentityTokens = new WebIdentityTokens();
  private readonly log: StsCall[] = [];
  private faults: Array<StsFault & { remaining: number }> = [];
  private faultMode: FaultMode | undefined;
  private readonly server = createServer((req, res) => {
    this.handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) this.sendError(res, new StsError(500, 'InternalFailure', `stand-in bug: ${String(error)}`, 'Receiver'));
    });
  });

  constructor(
    private readonly clock: Clock,
    private readonly checkRequestTime: boolean,
  ) {}

  async listen(port: number): Promise<void> {
    this.port = await listenOnLoopback(this.server, port);
    this.url = `http://127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  // --- setup -----------------------------------------------------------------------------------

  addUser(options: AddUserOptions): IssuedKey {
    const m = USER_ARN.exec(options.arn);
    if (!m) throw new Error(`not an IAM user ARN: ${options.arn}`);
    let user = this.users.get(options.arn);
    if (!user) {
      user = { arn: options.arn, partition: m[1]!, account: m[2]!, userId: newUniqueId('AIDA') };
      this.users.set(options.arn, user);
    }
    const accessKeyId = options.accessKeyId ?? newAccessKeyId('AKIA');
    const secretAccessKey = options.secretAccessKey ?? newSecret();
    this.keys.set(accessKeyId, { kind: 'user', accessKeyId, secretAccessKey, user, refusals: options.refusedRequests ?? 0 });
    return { accessKeyId, secretAccessKey };
  }

  addMfaDevice(serial: string, code = '123456'): void {
    this.mfaDevices.set(serial, code);
  }

  addRole(options: AddRoleOptions): void {
    const m = ROLE_ARN.exec(options.arn);
    if (!m) throw new Error(`not an IAM role ARN: ${options.arn}`);
    const max = options.maxSessionDurationSeconds ?? 3600;
    if (!Number.isInteger(max) || max < 3600 || max > 43200) throw new Error(`maxSessionDurationSeconds must be 3600–43200, not ${max}`);
    this.roles.set(options.arn, {
      arn: options.arn,
      partition: m[1]!,
      account: m[2]!,
      name: m[3]!,
      roleId: this.roles.get(options.arn)?.roleId ?? newUniqueId('AROA'),
      requireMfa: options.requireMfa ?? false,
      maxSessionDurationSeconds: max,
      trustedPrincipals: options.trustedPrincipals,
      externalId: options.externalId,
      webIdentity: options.webIdentity,
    });
  }

  addWebIdentityToken(options: WebIdentityTokenOptions): void {
    this.webIdentityTokens.add(options);
  }

  removeKey(accessKeyId: string): boolean {
    return this.keys.delete(accessKeyId);
  }

  issueRoleSession(roleArn: string, sessionName: string, seconds: number): IssuedKey & { sessionToken: string; expiration: Date } {
    const role = this.roles.get(roleArn);
    if (!role) throw new Error(`issueRoleSession: no role ${roleArn} (addRole it first)`);
    const key = this.mintRoleKey(role, sessionName, seconds);
    return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, sessionToken: key.sessionToken, expiration: new Date(key.expiration) };
  }

  /** A new role session's key, remembered: what AssumeRole, AssumeRoleWithWebIdentity and issueRoleSession hand out. */
  private mintRoleKey(
    role: Role,
    sessionName: string,
    seconds: number,
    session: Pick<RoleKey, 'mfaAuthenticated' | 'chained' | 'sourceIdentity' | 'tags' | 'transitiveTagKeys'> = {
      mfaAuthenticated: false,
      chained: false,
      sourceIdentity: undefined,
      tags: [],
      transitiveTagKeys: [],
    },
  ): RoleKey {
    const key: RoleKey = {
      kind: 'role',
      accessKeyId: newAccessKeyId('ASIA'),
      secretAccessKey: newSecret(),
      sessionToken: newSessionToken(),
      expiration: this.clock.now() + seconds * 1000,
      role,
      sessionName,
      ...session,
    };
    this.keys.set(key.accessKeyId, key);
    return key;
  }

  describeKey(accessKeyId: string): StsKeyInfo | undefined {
    const key = this.keys.get(accessKeyId);
    if (!key) return undefined;
    if (key.kind === 'role') {
      return {
        accessKeyId,
        kind: 'role',
        arn: principalArn(key),
        account: key.role.account,
        userId: `${key.role.roleId}:${key.sessionName}`,
        expiration: new Date(key.expiration),
        mfaAuthenticated: key.mfaAuthenticated,
        roleArn: key.role.arn,
        roleSessionName: key.sessionName,
        chained: key.chained,
        sourceIdentity: key.sourceIdentity,
        tags: key.tags.map((t) => ({ ...t })),
        transitiveTagKeys: [...key.transitiveTagKeys],
      };
    }
    return {
      accessKeyId,
      kind: key.kind,
      arn: key.user.arn,
      account: key.user.account,
      userId: key.user.userId,
      expiration: key.kind === 'session' ? new Date(key.expiration) : undefined,
      mfaAuthenticated: key.kind === 'session' && key.mfaAuthenticated,
      ...(key.kind === 'session' && key.federatedName !== undefined ? { arn: principalArn(key), federatedName: key.federatedName } : {}),
    };
  }

  authenticateRequest(request: SignedRequest, service: string): StsKeyInfo {
    const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, v === undefined ? [] : Array.isArray(v) ? v : [v]]));
    const body = typeof request.body === 'string' ? Buffer.from(request.body) : request.body;
    const key = this.authenticate({ method: request.method, path: request.path, query: request.query, headers, body }, service);
    return this.describeKey(key.accessKeyId)!;
  }

  verifyTemporaryCredentials(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string }): StsKeyInfo | undefined {
    const key = this.keys.get(credentials.accessKeyId);
    if (!key || key.kind === 'user') return undefined;
    if (!sameSecret(credentials.secretAccessKey, key.secretAccessKey) || !sameSecret(credentials.sessionToken, key.sessionToken)) return undefined;
    if (this.clock.now() >= key.expiration) return undefined;
    return this.describeKey(key.accessKeyId);
  }

  userKeyIds(userArn: string): string[] {
    return [...this.keys.values()].filter((k) => k.kind === 'user' && k.user.arn === userArn).map((k) => k.accessKeyId);
  }

  // --- observation and faults ---------------------------------------------------------------------

  get calls(): readonly StsCall[] {
    return this.log.map((c) => ({ ...c }));
  }

  count(action?: string, onlyOk = true): number {
    return this.log.filter((c) => (action === undefined || c.action === action) && (!onlyOk || c.ok)).length;
  }

  resetCalls(): void {
    this.log.length = 0;
  }

  injectFaults(faults: StsFault[]): void {
    for (const fault of faults) {
      if (!FAULT_KINDS.includes(fault?.kind)) throw new Error(`unknown fault kind ${JSON.stringify(fault?.kind)}; one of ${FAULT_KINDS.join(', ')}`);
      if (fault.kind === 'delay' && !(typeof fault.ms === 'number' && fault.ms >= 0)) throw new Error('a delay fault needs ms >= 0');
      if (fault.times !== undefined && !(Number.isInteger(fault.times) && fault.times > 0)) throw new Error('a fault\'s times must be a positive integer');
      this.faults.push({ ...fault, remaining: fault.times ?? 1 });
    }
  }

  setFaultMode(mode: FaultMode | undefined): void {
    this.faultMode = mode;
  }

  clearFaults(): void {
    this.faults = [];
    this.faultMode = undefined;
  }

  issuedSecrets(): string[] {
    const out: string[] = [];
    for (const key of this.keys.values()) {
      out.push(key.secretAccessKey);
      if (key.kind !== 'user') out.push(key.sessionToken);
    }
    out.push(...this.webIdentityTokens.secrets());
    return out;
  }

  private nextFault(request: FaultRequest): StsFaultKind | undefined {
    const index = this.faults.findIndex((f) => !f.actions || f.actions.includes(request.action));
    if (index >= 0) {
      const fault = this.faults[index]!;
      fault.remaining -= 1;
      if (fault.remaining <= 0) this.faults.splice(index, 1);
      return fault;
    }
    return this.faultMode?.(request);
  }

  // --- HTTP ---------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = this.clock.now();
    const body = await readBody(req);
    if (body === undefined) {
      res.writeHead(413).end();
      return;
    }
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = q < 0 ? '' : rawUrl.slice(q + 1);

    if (path.startsWith('/__standin/')) {
      this.admin(req.method ?? 'GET', path, body, res);
      return;
    }

    const method = (req.method ?? 'GET').toUpperCase();
    const headers = headersFromRaw(req.rawHeaders);
    const parsed = parseParams(method, query, headers['content-type']?.[0], body);
    const authorization = headers['authorization']?.[0] ?? '';
    const keyMatch = /Credential=([^/,\s]+)\//.exec(authorization);
    const call: StsCall = {
      action: parsed.action,
      accessKeyId: keyMatch?.[1] ?? '',
      ...describeParams(parsed),
      ok: false,
      status: 0,
      method,
      at,
      userAgent: headers['user-agent']?.[0],
    };

    const fault = this.nextFault({ action: call.action, accessKeyId: call.accessKeyId, roleArn: call.roleArn, method });
    if (fault) {
      call.fault = fault.kind;
      if (fault.kind === 'delay') {
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
        if (req.socket.destroyed) {
          this.record(call, 0, 'ClientGone');
          return;
        }
      } else {
        this.answerFault(fault, call, req, res);
        return;
      }
    }

    try {
      if (method !== 'GET' && method !== 'POST') throw new StsError(405, 'InvalidAction', `Method ${method} is not supported`);
      // AssumeRoleWithWebIdentity is unsigned: the token is the proof (the SDKs send no Authorization).
      const xml =
        parsed.action === 'AssumeRoleWithWebIdentity' && parsed.version === API_VERSION
          ? this.assumeRoleWithWebIdentity(parsed.params, call)
          : this.dispatch(parsed, this.authenticate({ method, path, query, headers, body }));
      this.record(call, 200);
      this.send(res, 200, xml);
    } catch (error) {
      if (!(error instanceof StsError)) throw error;
      this.record(call, error.status, error.code);
      this.sendError(res, error);
    }
  }

  private record(call: StsCall, status: number, errorCode?: string): void {
    call.status = status;
    call.ok = status === 200 && errorCode === undefined;
    if (errorCode !== undefined) call.errorCode = errorCode;
    this.log.push(call);
  }

  private answerFault(fault: StsFaultKind, call: StsCall, req: IncomingMessage, res: ServerResponse): void {
    switch (fault.kind) {
      case 'reset':
        this.record(call, 0, 'ConnectionReset');
        req.socket.destroy();
        return;
      case 'malformed': {
        this.record(call, 200, 'MalformedResponse');
        const name = call.action || 'GetCallerIdentity';
        this.send(res, 200, `<${name}Response xmlns="${XMLNS}"><${name}Result><Credentials><AccessKeyId>ASIA`);
        return;
      }
      case 'throttle':
        return this.failWith(call, res, new StsError(400, 'Throttling', 'Rate exceeded'));
      case 'internal':
        return this.failWith(
          call,
          res,
          new StsError(500, 'InternalFailure', 'The request processing has failed because of an unknown error, exception or failure.', 'Receiver'),
        );
      case 'expiredToken':
        return this.failWith(call, res, new StsError(400, 'ExpiredToken', 'The security token included in the request is expired'));
      case 'accessDenied': {
        const who = this.keys.get(call.accessKeyId);
        const arn = who ? principalArn(who) : 'anonymous';
        const on = call.roleArn ? ` on resource: ${call.roleArn}` : '';
        return this.failWith(call, res, new StsError(403, 'AccessDenied', `User: ${arn} is not authorized to perform: sts:${call.action || 'GetCallerIdentity'}${on}`));
      }
      case 'delay':
        return;
    }
  }

  private failWith(call: StsCall, res: ServerResponse, error: StsError): void {
    this.record(call, error.status, error.code);
    this.sendError(res, error);
  }

  private admin(method: string, path: string, body: Buffer, res: ServerResponse): void {
    const json = (status: number, value: unknown) => {
      const text = JSON.stringify(value);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
    };
    if (method === 'GET' && path === '/__standin/calls') return json(200, this.calls);
    if (method === 'POST' && path === '/__standin/reset') {
      this.resetCalls();
      this.clearFaults();
      return json(200, { ok: true });
    }
    if (method === 'POST' && path === '/__standin/faults') {
      try {
        const faults = JSON.parse(body.toString('utf8')) as StsFault[];
        if (!Array.isArray(faults)) throw new Error('expected a JSON array of faults');
        this.injectFaults(faults);
        return json(200, { ok: true, queued: faults.length });
      } catch (error) {
        return json(400, { error: String(error) });
      }
    }
    return json(404, { error: `no admin route ${method} ${path}` });
  }

  private send(res: ServerResponse, status: number, xml: string): void {
    res.writeHead(status, {
      'Content-Type': 'text/xml',
      'Content-Length': Buffer.byteLength(xml),
      'x-amzn-RequestId': randomUUID(),
      // The stand-in's idea of "now", like AWS's Date header (the SDKs correct clock skew from it).
      Date: new Date(this.clock.now()).toUTCString(),
    });
    res.end(xml);
  }

  private sendError(res: ServerResponse, error: StsError): void {
    const requestId = randomUUID();
    const xml =
      `<ErrorResponse xmlns="${XMLNS}">\n  <Error>\n    <Type>${error.type}</Type>\n    <Code>${xmlEscape(error.code)}</Code>\n` +
      `    <Message>${xmlEscape(error.message)}</Message>\n  </Error>\n  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`;
    res.writeHead(error.status, {
      'Content-Type': 'text/xml',
      'Content-Length': Buffer.byteLength(xml),
      'x-amzn-RequestId': requestId,
      Date: new Date(this.clock.now()).toUTCString(),
    });
    res.end(xml);
  }

  // --- authentication -----------------------------------------------------------------------------

  private authenticate(request: { method: string; path: string; query: string; headers: Record<string, string[]>; body: Buffer }, service = 'sts'): KeyRecord {
    let key: KeyRecord | undefined;
    const result = verifySigV4(
      request,
      (accessKeyId) => {
        key = this.keys.get(accessKeyId);
        if (!key) return undefined;
        if (key.kind === 'user' && key.refusals > 0) {
          key.refusals -= 1;
          return undefined; // not yet known here: InvalidClientTokenId, as AWS answers
        }
        // Token checks come before the signature, as with AWS: the token identifies the session.
        const token = request.headers['x-amz-security-token']?.[0];
        if (key.kind === 'user') {
          if (token !== undefined) throw new StsError(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
        } else {
          if (token === undefined || !sameSecret(token, key.sessionToken)) {
            throw new StsError(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
          }
          if (this.clock.now() >= key.expiration) throw new StsError(400, 'ExpiredToken', 'The security token included in the request is expired');
        }
        return key.secretAccessKey;
      },
      { service, now: this.checkRequestTime ? this.clock.now() : undefined },
    );
    if (!result.ok) throw new StsError(result.status, result.code, result.message);
    return key!;
  }

  // --- actions ------------------------------------------------------------------------------------

  private dispatch(parsed: Parsed, caller: KeyRecord): string {
    if (!parsed.action) throw new StsError(400, 'MissingAction', 'Missing Action');
    const version = parsed.version ?? 'NO_VERSION_SPECIFIED';
    if (!(ACTIONS as readonly string[]).includes(parsed.action) || version !== API_VERSION) {
      throw new StsError(400, 'InvalidAction', `Could not find operation ${parsed.action} for version ${version}`);
    }
    switch (parsed.action as Action) {
      case 'GetCallerIdentity':
        return this.getCallerIdentity(caller);
      case 'GetSessionToken':
        return this.getSessionToken(parsed.params, caller);
      case 'AssumeRole':
        return this.assumeRole(parsed.params, caller);
      case 'AssumeRoleWithWebIdentity':
        return this.assumeRoleWithWebIdentity(parsed.params);
      case 'GetFederationToken':
        return this.getFederationToken(parsed.params, caller);
    }
  }

  private getCallerIdentity(caller: KeyRecord): string {
    const arn = principalArn(caller);
    const account = caller.kind === 'role' ? caller.role.account : caller.user.account;
    const userId = caller.kind === 'role' ? `${caller.role.roleId}:${caller.sessionName}` : caller.user.userId;
    return response(
      'GetCallerIdentity',
      `    <Arn>${xmlEscape(arn)}</Arn>\n    <UserId>${xmlEscape(userId)}</UserId>\n    <Account>${account}</Account>\n`,
    );
  }

  /** Checks SerialNumber + TokenCode when sent: true when a valid pair came, false when none. */
  private checkMfa(params: URLSearchParams): boolean {
    const serial = params.get('SerialNumber') ?? undefined;
    const code = params.get('TokenCode') ?? undefined;
    if (serial === undefined && code === undefined) return false;
    if (serial === undefined || code === undefined) {
      throw new StsError(
        403,
        'AccessDenied',
        'MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA serial number is valid and associated with this user.',
      );
    }
    const expected = this.mfaDevices.get(serial);
    if (expected === undefined) {
      throw new StsError(
        403,
        'AccessDenied',
        'MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA serial number is valid and associated with this user.',
      );
    }
    if (!sameSecret(code, expected)) throw new StsError(403, 'AccessDenied', 'MultiFactorAuthentication failed with invalid MFA one time pass code. ');
    return true;
  }

  private getSessionToken(params: URLSearchParams, caller: KeyRecord): string {
    const v = new Validation();
    const duration = parseInteger('durationSeconds', params.get('DurationSeconds') ?? undefined);
    v.range('durationSeconds', duration, 900, 129600);
    validateMfa(params, v);
    v.throwIfAny();
    if (caller.kind !== 'user') throw new StsError(403, 'AccessDenied', 'Cannot call GetSessionToken with session credentials');
    const mfa = this.checkMfa(params);
    const seconds = duration ?? 43200;
    const key: CacheKey = {
      kind: 'session',
      accessKeyId: newAccessKeyId('ASIA'),
      secretAccessKey: newSecret(),
      sessionToken: newSessionToken(),
      expiration: this.clock.now() + seconds * 1000,
      user: caller.user,
      mfaAuthenticated: mfa,
    };
    this.keys.set(key.accessKeyId, key);
    return response('GetSessionToken', credentialsXml(key));
  }

  private assumeRoleWithWebIdentity(params: URLSearchParams, call?: StsCall): string {
    const roleArn = params.get('RoleArn') ?? undefined;
    const sessionName = params.get('RoleSessionName') ?? undefined;
    const v = new Validation();
    const duration = parseInteger('durationSeconds', params.get('DurationSeconds') ?? undefined);
    v.required('roleArn', roleArn);
    v.required('roleSessionName', sessionName);
    v.pattern('roleSessionName', sessionName, /^[\w+=,.@-]{2,64}$/, '[\\w+=,.@-]*');
    v.required('webIdentityToken', params.get('WebIdentityToken') ?? undefined);
    v.range('durationSeconds', duration, 900, 43200);
    v.throwIfAny();
    const checked = this.webIdentityTokens.check(params.get('WebIdentityToken') ?? undefined, this.clock.now());
    if (!checked.ok) throw new StsError(checked.status, checked.code, checked.message);
    if (call) call.webIdentitySubject = checked.claims.subject;
    const role = this.roles.get(roleArn!);
    if (!role || !trustsWebIdentity(role.webIdentity, checked.claims)) {
      throw new StsError(403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    }
    if (duration !== undefined && duration > role.maxSessionDurationSeconds) {
      throw new StsError(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    }
    const key = this.mintRoleKey(role, sessionName!, duration ?? 3600);
    const { claims } = checked;
    return response(
      'AssumeRoleWithWebIdentity',
      `    <SubjectFromWebIdentityToken>${xmlEscape(claims.subject)}</SubjectFromWebIdentityToken>\n    <Audience>${xmlEscape(claims.audience)}</Audience>\n` +
        `    <AssumedRoleUser>\n      <AssumedRoleId>${xmlEscape(`${role.roleId}:${key.sessionName}`)}</AssumedRoleId>\n` +
        `      <Arn>${xmlEscape(assumedRoleArn(role, key.sessionName))}</Arn>\n    </AssumedRoleUser>\n` +
        credentialsXml(key) +
        `    <Provider>${xmlEscape(claims.issuer)}</Provider>\n`,
    );
  }

  /** A federated user's session, from a long-term key only (as AWS: not from session credentials). */
  private getFederationToken(params: URLSearchParams, caller: KeyRecord): string {
    const name = params.get('Name') ?? undefined;
    const policy = params.get('Policy') ?? undefined;
    const v = new Validation();
    const duration = parseInteger('durationSeconds', params.get('DurationSeconds') ?? undefined);
    v.required('name', name);
    v.length('name', name, 2, 32);
    v.pattern('name', name, /^[\w+=,.@-]*$/, '[\\w+=,.@-]+');
    v.range('durationSeconds', duration, 900, 129600);
    v.length('policy', policy, 1, 2048);
    v.throwIfAny();
    if (caller.kind !== 'user') throw new StsError(403, 'AccessDenied', 'Cannot call GetFederationToken with session credentials');
    const key: CacheKey = {
      kind: 'session',
      accessKeyId: newAccessKeyId('ASIA'),
      secretAccessKey: newSecret(),
      sessionToken: newSessionToken(),
      expiration: this.clock.now() + (duration ?? 43200) * 1000,
      user: caller.user,
      mfaAuthenticated: false,
      federatedName: name!,
    };
    this.keys.set(key.accessKeyId, key);
    const arn = principalArn(key);
    return response(
      'GetFederationToken',
      credentialsXml(key) +
        `    <FederatedUser>\n      <FederatedUserId>${caller.user.account}:${xmlEscape(name!)}</FederatedUserId>\n      <Arn>${xmlEscape(arn)}</Arn>\n    </FederatedUser>\n`,
    );
  }

  private assumeRole(params: URLSearchParams, caller: KeyRecord): string {
    const get = (name: string) => params.get(name) ?? undefined;
    const roleArn = get('RoleArn');
    const sessionName = get('RoleSessionName');
    const externalId = get('ExternalId');
    const sourceIdentity = get('SourceIdentity');
    const v = new Validation();
    const duration = parseInteger('durationSeconds', get('DurationSeconds'));
    v.required('roleArn', roleArn);
    v.length('roleArn', roleArn, 20, 2048);
    v.required('roleSessionName', sessionName);
    v.length('roleSessionName', sessionName, 2, 64);
    v.pattern('roleSessionName', sessionName, /^[\w+=,.@-]*$/, '[\\w+=,.@-]*');
    v.range('durationSeconds', duration, 900, 43200);
    v.length('externalId', externalId, 2, 1224);
    v.pattern('externalId', externalId, /^[\w+=,.@:/-]*$/, '[\\w+=,.@:\\/-]*');
    v.length('sourceIdentity', sourceIdentity, 2, 64);
    v.pattern('sourceIdentity', sourceIdentity, /^[\w+=,.@-]*$/, '[\\w+=,.@-]*');
    validateMfa(params, v);
    const { tags, transitiveTagKeys } = parseTags(params, v);
    v.throwIfAny();
    if (sourceIdentity?.toLowerCase().startsWith('aws:')) {
      throw new StsError(400, 'ValidationError', "SourceIdentity cannot begin with the reserved prefix 'aws:'");
    }
    checkTagRules(tags, transitiveTagKeys);

    const requestMfa = this.checkMfa(params);
    const callerArn = principalArn(caller);
    const role = this.roles.get(roleArn!);
    const denied = () => new StsError(403, 'AccessDenied', `User: ${callerArn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`);
    if (!role) throw denied();
    const callerMfa = caller.kind !== 'user' && caller.mfaAuthenticated;
    const mfa = requestMfa || callerMfa;
    if (role.requireMfa && !mfa) throw denied();
    if (!trusts(role, caller)) throw denied();
    if (role.externalId !== undefined && externalId !== role.externalId) throw denied();

    const chained = caller.kind === 'role';
    if (chained && duration !== undefined && duration > 3600) {
      throw new StsError(400, 'ValidationError', 'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.');
    }
    if (duration !== undefined && duration > role.maxSessionDurationSeconds) {
      throw new StsError(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    }
    if (caller.kind === 'role' && caller.sourceIdentity !== undefined && sourceIdentity !== undefined && sourceIdentity !== caller.sourceIdentity) {
      throw new StsError(403, 'AccessDenied', `User: ${callerArn} is not authorized to perform: sts:SetSourceIdentity on resource: ${roleArn}`);
    }

    // Transitive tags of the calling session carry over; the request cannot override them.
    const inherited = caller.kind === 'role' ? caller.tags.filter((t) => caller.transitiveTagKeys.some((k) => k.toLowerCase() === t.key.toLowerCase())) : [];
    for (const t of tags) {
      if (inherited.some((i) => i.key.toLowerCase() === t.key.toLowerCase())) {
        throw new StsError(400, 'InvalidParameterValue', 'One or more of the specified transitive tag keys can\'t be set because they conflict with the existing transitive tags.');
      }
    }
    const key = this.mintRoleKey(role, sessionName!, duration ?? 3600, {
      mfaAuthenticated: mfa,
      chained,
      sourceIdentity: sourceIdentity ?? (caller.kind === 'role' ? caller.sourceIdentity : undefined),
      tags: [...inherited, ...tags],
      transitiveTagKeys: [...(caller.kind === 'role' ? caller.transitiveTagKeys : []), ...transitiveTagKeys],
    });

    let result = '';
    if (key.sourceIdentity !== undefined) result += `    <SourceIdentity>${xmlEscape(key.sourceIdentity)}</SourceIdentity>\n`;
    result +=
      `    <AssumedRoleUser>\n      <AssumedRoleId>${xmlEscape(`${role.roleId}:${key.sessionName}`)}</AssumedRoleId>\n` +
      `      <Arn>${xmlEscape(assumedRoleArn(role, key.sessionName))}</Arn>\n    </AssumedRoleUser>\n`;
    result += credentialsXml(key);
    if (tags.length > 0) result += `    <PackedPolicySize>${packedPolicySize(tags)}</PackedPolicySize>\n`;
    return response('AssumeRole', result);
  }
}

function trusts(role: Role, caller: KeyRecord): boolean {
  if (!role.trustedPrincipals) return true;
  const account = caller.kind === 'role' ? caller.role.account : caller.user.account;
  const partition = caller.kind === 'role' ? caller.role.partition : caller.user.partition;
  const names = new Set(['*', account, `arn:${partition}:iam::${account}:root`, principalArn(caller)]);
  if (caller.kind === 'role') names.add(caller.role.arn);
  return role.trustedPrincipals.some((p) => names.has(p));
}

function parseTags(params: URLSearchParams, v: Validation): { tags: StsTag[]; transitiveTagKeys: string[] } {
  const keys = memberList(params, 'Tags', '.Key');
  const values = memberList(params, 'Tags', '.Value');
  const tags: StsTag[] = [];
  for (const [n, key] of keys) {
    const value = values.get(n) ?? '';
    v.length(`tags.${n}.member.key`, key, 1, 128);
    v.pattern(`tags.${n}.member.key`, key, /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u, '[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+');
    v.length(`tags.${n}.member.value`, value, 0, 256);
    v.pattern(`tags.${n}.member.value`, value, /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u, '[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*');
    tags.push({ key, value });
  }
  if (tags.length > 50) v.add(`Value '[${tags.map((t) => t.key).join(', ')}]' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50`);
  const transitiveTagKeys = [...memberList(params, 'TransitiveTagKeys').values()];
  if (transitiveTagKeys.length > 50) v.add(`Value at 'transitiveTagKeys' failed to satisfy constraint: Member must have length less than or equal to 50`);
  return { tags, transitiveTagKeys };
}

function checkTagRules(tags: StsTag[], transitiveTagKeys: string[]): void {
  const lower = tags.map((t) => t.key.toLowerCase());
  if (new Set(lower).size !== lower.length) {
    throw new StsError(400, 'InvalidParameterValue', 'Duplicate tag keys found. Please note that Tag keys are case insensitive.');
  }
  for (const key of transitiveTagKeys) {
    if (!lower.includes(key.toLowerCase())) {
      throw new StsError(400, 'InvalidParameterValue', 'The specified transitive tag key must be included in the requested tags.');
    }
  }
}

/** AWS reports how much of the packed session policy/tag budget a request used, as a percentage. */
function packedPolicySize(tags: StsTag[]): number {
  const bytes = tags.reduce((n, t) => n + t.key.length + t.value.length + 4, 0);
  return Math.max(1, Math.min(100, Math.ceil((bytes * 100) / 2048)));
}

function credentialsXml(key: CacheKey | RoleKey): string {
  return (
    `    <Credentials>\n      <AccessKeyId>${key.accessKeyId}</AccessKeyId>\n` +
    `      <SecretAccessKey>${xmlEscape(key.secretAccessKey)}</SecretAccessKey>\n` +
    `      <SessionToken>${xmlEscape(key.sessionToken)}</SessionToken>\n` +
    `      <Expiration>${formatExpiration(new Date(key.expiration))}</Expiration>\n    </Credentials>\n`
  );
}

function response(action: Action, resultBody: string): string {
  return (
    `<${action}Response xmlns="${XMLNS}">\n  <${action}Result>\n${resultBody}  </${action}Result>\n` +
    `  <ResponseMetadata>\n    <RequestId>${randomUUID()}</RequestId>\n  </ResponseMetadata>\n</${action}Response>\n`
  );
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) tooBig = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooBig ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Query-string parameters, overlaid with a form-encoded POST body. */
function parseParams(method: string, query: string, contentType: string | undefined, body: Buffer): Parsed {
  const params = new URLSearchParams(query);
  const isForm = contentType === undefined || /^application\/x-www-form-urlencoded\b/i.test(contentType);
  if (method === 'POST' && isForm && body.length > 0) {
    for (const [name, value] of new URLSearchParams(body.toString('utf8'))) params.set(name, value);
  }
  return { action: params.get('Action') ?? '', version: params.get('Version') ?? undefined, params };
}

/** The non-secret request parameters worth recording. */
function describeParams(parsed: Parsed): Partial<StsCall> {
  const p = parsed.params;
  const out: Partial<StsCall> = {};
  const set = <K extends keyof StsCall>(k: K, value: StsCall[K] | undefined) => {
    if (value !== undefined) out[k] = value;
  };
  set('roleArn', p.get('RoleArn') ?? undefined);
  set('roleSessionName', p.get('RoleSessionName') ?? undefined);
  set('serialNumber', p.get('SerialNumber') ?? undefined);
  const duration = p.get('DurationSeconds');
  if (duration !== null && /^\d+$/.test(duration)) out.durationSeconds = Number(duration);
  set('externalId', p.get('ExternalId') ?? undefined);
  set('sourceIdentity', p.get('SourceIdentity') ?? undefined);
  if (parsed.action === 'GetFederationToken') {
    set('federatedName', p.get('Name') ?? undefined);
    set('policy', p.get('Policy') ?? undefined);
  }
  const keys = memberList(p, 'Tags', '.Key');
  const values = memberList(p, 'Tags', '.Value');
  if (keys.size > 0) out.tags = [...keys].map(([n, key]) => ({ key, value: values.get(n) ?? '' }));
  const transitive = [...memberList(p, 'TransitiveTagKeys').values()];
  if (transitive.length > 0) out.transitiveTagKeys = transitive;
  if (p.has('TokenCode')) out.tokenCodeSent = true;
  return out;
}

/** Starts a stand-in on 127.0.0.1 (a random port unless one is given). */
export async function startStsStandIn(options: StsStandInOptions = {}): Promise<StsStandIn> {
  const standIn = new StandIn(options.clock ?? systemClock, options.checkRequestTime ?? false);
  await standIn.listen(options.port ?? 0);
  return standIn;
}
