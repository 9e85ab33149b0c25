/**
 * A local stand-in for the AWS sign-in federation endpoint (`https://signin.aws.amazon.com/federation`)
 * as described in "Enable custom identity broker access to the AWS console"
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_enable-console-custom-url.html):
 *
 *   GET ?Action=getSigninToken&Session={"sessionId","sessionKey","sessionToken"}[&SessionDuration=N]
 *       → {"SigninToken": "…"} when the three values are temporary credentials STS issued and that
 *         have not expired. GetSessionToken credentials are refused, as the real endpoint refuses
 *         them; SessionDuration (900–43200) only goes with role credentials.
 *   GET ?Action=login&Issuer=…&Destination=…&SigninToken=…
 *       → 302 to Destination for a token it issued less than 15 minutes ago.
 *
 * It shares the STS stand-in's keys, so only credentials that stand-in minted are accepted.
 * Calls are recorded without secrets.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { systemClock, type Clock } from '@vault/core';
import type { StsStandIn } from './stsStandIn.js';
import { closeServer, listenOnLoopback } from './loopbackServer.js';

/** A sign-in token is good for 15 minutes (AWS's documentation of the federation endpoint). */
const SIGNIN_TOKEN_LIFE_MS = 15 * 60_000;

export interface FederationCall {
  action: string;
  ok: boolean;
  status: number;
  /** Why it was refused, in words (never a secret). */
  reason?: string;
  /** The principal the Session's credentials belong to. */
  principalArn?: string;
  /** The JSON keys of the Session parameter, in order. */
  sessionKeys?: string[];
  sessionDuration?: number;
  issuer?: string;
  destination?: string;
}

export interface FederationStandIn {
  /** `http://127.0.0.1:PORT/federation`: what VAULT_SIGNIN_ENDPOINT is set to. */
  readonly url: string;
  readonly calls: readonly FederationCall[];
  /** Answer every getSigninToken with this HTTP status (a refusing endpoint); undefined to stop. */
  refuseWith(status: number | undefined): void;
  /** Every sign-in token it issued, for leak scans. */
  issuedTokens(): string[];
  resetCalls(): void;
  close(): Promise<void>;
}

class Federation implements FederationStandIn {
  url = '';
  private readonly log: FederationCall[] = [];
  private readonly tokens = new Map<string, { issuedAt: number; federated: boolean }>();
  private refusal: number | undefined;
  private readonly server = createServer((req, res) => this.handle(req, res));

  constructor(
    private readonly sts: StsStandIn,
    private readonly clock: Clock,
  ) {}

  async listen(): Promise<void> {
    this.url = `http://127.0.0.1:${await listenOnLoopback(this.server)}/federation`;
  }

  get calls(): readonly FederationCall[] {
    return this.log.map((c) => ({ ...c }));
  }

  refuseWith(status: number | undefined): void {
    this.refusal = status;
  }

  issuedTokens(): string[] {
    return [...this.tokens.keys()];
  }

  resetCalls(): void {
    this.log.length = 0;
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const action = url.searchParams.get('Action') ?? '';
    const call: FederationCall = { action, ok: false, status: 400 };
    const fail = (status: number, reason: string) => {
      call.status = status;
      call.reason = reason;
      this.log.push(call);
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(`${status === 400 ? 'Bad Request' : 'Error'}\n`);
    };
    if (req.method !== 'GET' || url.pathname !== '/federation') return fail(404, `no such resource: ${req.method} ${url.pathname}`);
    if (action === 'getSigninToken') {
      if (this.refusal !== undefined) return fail(this.refusal, 'refused on purpose');
      const raw = url.searchParams.get('Session');
      if (raw === null) return fail(400, 'no Session parameter');
      let session: Record<string, unknown>;
      try {
        session = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return fail(400, 'Session is not JSON');
      }
      call.sessionKeys = Object.keys(session);
      const { sessionId, sessionKey, sessionToken } = session;
      if (call.sessionKeys.length !== 3 || typeof sessionId !== 'string' || typeof sessionKey !== 'string' || typeof sessionToken !== 'string') {
        return fail(400, 'Session must hold exactly sessionId, sessionKey and sessionToken');
      }
      const info = this.sts.verifyTemporaryCredentials({ accessKeyId: sessionId, secretAccessKey: sessionKey, sessionToken });
      if (!info) return fail(400, 'the Session is not valid temporary credentials');
      call.principalArn = info.arn;
      const federated = info.federatedName !== undefined;
      if (info.kind === 'session' && !federated) return fail(400, 'GetSessionToken credentials cannot sign in to the console');
      const rawDuration = url.searchParams.get('SessionDuration');
      if (rawDuration !== null) {
        const duration = /^\d+$/.test(rawDuration) ? Number(rawDuration) : Number.NaN;
        if (!(duration >= 900 && duration <= 43200)) return fail(400, `SessionDuration ${rawDuration} is not 900–43200`);
        if (federated) return fail(400, 'SessionDuration cannot be used with GetFederationToken credentials');
        call.sessionDuration = duration;
      }
      const token = randomBytes(96).toString('base64url');
      this.tokens.set(token, { issuedAt: this.clock.now(), federated });
      call.ok = true;
      call.status = 200;
      this.log.push(call);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ SigninToken: token }));
      return;
    }
    if (action === 'login') {
      call.issuer = url.searchParams.get('Issuer') ?? undefined;
      call.destination = url.searchParams.get('Destination') ?? undefined;
      const issued = this.tokens.get(url.searchParams.get('SigninToken') ?? '');
      if (!issued || this.clock.now() - issued.issuedAt > SIGNIN_TOKEN_LIFE_MS) return fail(400, 'unknown or expired SigninToken');
      if (call.destination === undefined || !/^https:\/\//.test(call.destination)) return fail(400, 'Destination must be an https URL');
      call.ok = true;
      call.status = 302;
      this.log.push(call);
      res.writeHead(302, { Location: call.destination }).end();
      return;
    }
    return fail(400, `unknown Action ${action}`);
  }
}

/** Starts a federation endpoint on 127.0.0.1 that accepts the credentials `sts` issued. */
export async function startFederationStandIn(sts: StsStandIn, options: { clock?: Clock } = {}): Promise<FederationStandIn> {
  const standIn = new Federation(sts, options.clock ?? systemClock);
  await standIn.listen();
  return standIn;
}
