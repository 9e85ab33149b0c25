/**
 * A local stand-in for the IAM query API (version 2010-05-08), the four calls `vault rotate`
 * makes: GetUser, CreateAccessKey, DeleteAccessKey, ListAccessKeys. It shares the STS stand-in's
 * users and keys (requests are SigV4-checked by it, for service `iam`), so a key created here is
 * at once accepted by STS and a key deleted here is refused by it. Replies and errors follow
 * AWS's XML shapes and wording; calls are recorded without secrets.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { headersFromRaw } from './sigv4.js';
import { StsError, xmlEscape, type StsKeyInfo, type StsStandIn } from './stsStandIn.js';
import { closeServer, listenOnLoopback } from './loopbackServer.js';

const XMLNS = 'https://iam.amazonaws.com/doc/2010-05-08/';
const API_VERSION = '2010-05-08';
/** IAM's quota: two access keys per user (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html). */
const ACCESS_KEYS_PER_USER = 2;
const ACTIONS = ['GetUser', 'CreateAccessKey', 'DeleteAccessKey', 'ListAccessKeys'] as const;
type Action = (typeof ACTIONS)[number];

export interface IamCall {
  action: string;
  /** The key that signed the request ('' when unsigned). */
  accessKeyId: string;
  userName?: string;
  /** DeleteAccessKey's target (a key id is no secret). */
  targetKeyId?: string;
  ok: boolean;
  status: number;
  errorCode?: string;
  /** Whether the caller's session was established with MFA. */
  mfa?: boolean;
}

/** An error IAM answers with, for the next `times` calls of `action` (every call when times is omitted). */
export interface IamFault {
  action: Action;
  code: string;
  status: number;
  message: string;
  times?: number;
}

export interface IamStandInOptions {
  /** The users' policy allows iam:*AccessKey* only with aws:MultiFactorAuthPresent (a common policy). */
  requireMfa?: boolean;
  /** The users' policy does not allow iam:GetUser (its AccessDenied message still names the user). */
  denyGetUser?: boolean;
  /** A key it creates is refused by STS for its first N requests (IAM's eventual consistency). */
  propagationRequests?: number;
}

export interface IamStandIn {
  readonly url: string;
  readonly calls: readonly IamCall[];
  count(action: string, onlyOk?: boolean): number;
  /** Changes the users' policy (requireMfa, denyGetUser) and propagation from now on. */
  setPolicy(options: IamStandInOptions): void;
  /** Queues a fault; a fault without `times` stays until clearFaults. */
  injectFault(fault: IamFault): void;
  clearFaults(): void;
  resetCalls(): void;
  /** Every secret access key it created (deleted ones included), for leak scans. */
  createdSecrets(): string[];
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

function userNameOf(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

class Iam implements IamStandIn {
  url = '';
  private readonly log: IamCall[] = [];
  private faults: Array<IamFault & { remaining: number }> = [];
  private readonly secrets: string[] = [];
  private readonly created = new Map<string, number>();
  private readonly server = createServer((req, res) => {
    this.handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) this.sendError(res, new StsError(500, 'ServiceFailure', `stand-in bug: ${String(error)}`, 'Receiver'));
    });
  });

  constructor(
    private readonly sts: StsStandIn,
    private options: IamStandInOptions,
  ) {}

  setPolicy(options: IamStandInOptions): void {
    this.options = { ...options };
  }

  async listen(): Promise<void> {
    this.url = `http://127.0.0.1:${await listenOnLoopback(this.server)}`;
  }

  get calls(): readonly IamCall[] {
    return this.log.map((c) => ({ ...c }));
  }

  count(action: string, onlyOk = true): number {
    return this.log.filter((c) => c.action === action && (!onlyOk || c.ok)).length;
  }

  injectFault(fault: IamFault): void {
    this.faults.push({ ...fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
  }

  clearFaults(): void {
    this.faults = [];
  }

  resetCalls(): void {
    this.log.length = 0;
  }

  createdSecrets(): string[] {
    return [...this.secrets];
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY) {
        res.writeHead(413).end();
        return;
      }
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = q < 0 ? '' : rawUrl.slice(q + 1);
    const method = (req.method ?? 'GET').toUpperCase();
    const headers = headersFromRaw(req.rawHeaders);
    const params = new URLSearchParams(query);
    if (method === 'POST') for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params.set(k, v);
    const action = params.get('Action') ?? '';
    const call: IamCall = {
      action,
      accessKeyId: /Credential=([^/,\s]+)\//.exec(headers['authorization']?.[0] ?? '')?.[1] ?? '',
      ...(params.has('UserName') ? { userName: params.get('UserName')! } : {}),
      ...(params.has('AccessKeyId') ? { targetKeyId: params.get('AccessKeyId')! } : {}),
      ok: false,
      status: 0,
    };
    try {
      const caller = this.sts.authenticateRequest({ method, path, query, headers, body }, 'iam');
      call.mfa = caller.mfaAuthenticated;
      if (!(ACTIONS as readonly string[]).includes(action) || params.get('Version') !== API_VERSION) {
        throw new StsError(400, 'InvalidAction', `Could not find operation ${action} for version ${params.get('Version') ?? 'NO_VERSION_SPECIFIED'}`);
      }
      const fault = this.faults.find((f) => f.action === action);
      if (fault) {
        fault.remaining -= 1;
        if (fault.remaining <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
        throw new StsError(fault.status, fault.code, fault.message, fault.status >= 500 ? 'Receiver' : 'Sender');
      }
      const xml = this.dispatch(action as Action, params, caller);
      call.ok = true;
      call.status = 200;
      this.log.push(call);
      res.writeHead(200, { 'Content-Type': 'text/xml' }).end(xml);
    } catch (error) {
      if (!(error instanceof StsError)) throw error;
      call.status = error.status;
      call.errorCode = error.code;
      this.log.push(call);
      this.sendError(res, error);
    }
  }

  /** The IAM user a request acts on: UserName, else the caller's own user. */
  private userArn(params: URLSearchParams, caller: StsKeyInfo, action: Action): string {
    const callerUser = caller.kind === 'role' || caller.federatedName !== undefined ? undefined : caller.arn;
    const named = params.get('UserName') ?? undefined;
    if (named === undefined) {
      if (callerUser === undefined) throw new StsError(400, 'ValidationError', 'Must specify userName when calling with non-User credentials');
      return callerUser;
    }
    const arn = callerUser && userNameOf(callerUser) === named ? callerUser : `arn:aws:iam::${caller.account}:user/${named}`;
    if (this.sts.userKeyIds(arn).length === 0 && !this.created.has(arn)) {
      throw new StsError(404, 'NoSuchEntity', `The user with name ${named} cannot be found.`);
    }
    if (callerUser !== arn) throw this.denied(caller, action, named);
    return arn;
  }

  private denied(caller: StsKeyInfo, action: Action, userName: string, why = ''): StsError {
    return new StsError(403, 'AccessDenied', `User: ${caller.arn} is not authorized to perform: iam:${action} on resource: user ${userName}${why}`);
  }

  private dispatch(action: Action, params: URLSearchParams, caller: StsKeyInfo): string {
    const arn = this.userArn(params, caller, action);
    const name = userNameOf(arn);
    if (action === 'GetUser') {
      if (this.options.denyGetUser) throw this.denied(caller, action, name);
      const userId = this.sts.describeKey(this.sts.userKeyIds(arn)[0] ?? '')?.userId ?? 'AIDAUNKNOWN';
      return reply(
        action,
        `    <User>\n      <Path>/</Path>\n      <UserName>${xmlEscape(name)}</UserName>\n      <UserId>${userId}</UserId>\n` +
          `      <Arn>${xmlEscape(arn)}</Arn>\n      <CreateDate>2026-01-01T00:00:00Z</CreateDate>\n    </User>\n`,
      );
    }
    if (this.options.requireMfa && !caller.mfaAuthenticated) {
      throw this.denied(caller, action, name, ' with an explicit deny in an identity-based policy');
    }
    const keys = this.sts.userKeyIds(arn);
    switch (action) {
      case 'ListAccessKeys':
        return reply(
          action,
          `    <UserName>${xmlEscape(name)}</UserName>\n    <AccessKeyMetadata>\n` +
            keys.map((id) => `      <member>\n        <UserName>${xmlEscape(name)}</UserName>\n        <AccessKeyId>${id}</AccessKeyId>\n        <Status>Active</Status>\n        <CreateDate>2026-01-01T00:00:00Z</CreateDate>\n      </member>\n`).join('') +
            `    </AccessKeyMetadata>\n    <IsTruncated>false</IsTruncated>\n`,
        );
      case 'CreateAccessKey': {
        if (keys.length >= ACCESS_KEYS_PER_USER) throw new StsError(409, 'LimitExceeded', `Cannot exceed quota for AccessKeysPerUser: ${ACCESS_KEYS_PER_USER}`);
        const key = this.sts.addUser({ arn, refusedRequests: this.options.propagationRequests ?? 0 });
        this.secrets.push(key.secretAccessKey);
        this.created.set(arn, (this.created.get(arn) ?? 0) + 1);
        return reply(
          action,
          `    <AccessKey>\n      <UserName>${xmlEscape(name)}</UserName>\n      <AccessKeyId>${key.accessKeyId}</AccessKeyId>\n      <Status>Active</Status>\n` +
            `      <SecretAccessKey>${xmlEscape(key.secretAccessKey)}</SecretAccessKey>\n      <CreateDate>2026-01-01T00:00:00Z</CreateDate>\n    </AccessKey>\n`,
        );
      }
      case 'DeleteAccessKey': {
        const id = params.get('AccessKeyId') ?? '';
        if (!keys.includes(id)) throw new StsError(404, 'NoSuchEntity', `The Access Key with id ${id} cannot be found.`);
        this.sts.removeKey(id);
        return reply(action, '');
      }
    }
  }

  private sendError(res: ServerResponse, error: StsError): void {
    const xml =
      `<ErrorResponse xmlns="${XMLNS}">\n  <Error>\n    <Type>${error.type}</Type>\n    <Code>${xmlEscape(error.code)}</Code>\n` +
      `    <Message>${xmlEscape(error.message)}</Message>\n  </Error>\n  <RequestId>${randomUUID()}</RequestId>\n</ErrorResponse>\n`;
    res.writeHead(error.status, { 'Content-Type': 'text/xml' }).end(xml);
  }
}

function reply(action: Action, result: string): string {
  const body = result === '' ? '' : `  <${action}Result>\n${result}  </${action}Result>\n`;
  return `<${action}Response xmlns="${XMLNS}">\n${body}  <ResponseMetadata>\n    <RequestId>${randomUUID()}</RequestId>\n  </ResponseMetadata>\n</${action}Response>\n`;
}

/** Starts an IAM stand-in on 127.0.0.1 over the STS stand-in's users and keys. */
export async function startIamStandIn(sts: StsStandIn, options: IamStandInOptions = {}): Promise<IamStandIn> {
  const standIn = new Iam(sts, options);
  await standIn.listen();
  return standIn;
}
