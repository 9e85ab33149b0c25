import { randomInt } from 'node:crypto';
import { systemClock, type Clock } from '@vault/core';
import { JsonService, JsonServiceError, opaque, type JsonRequest } from './jsonService.js';

/**
 * A stand-in for the IAM Identity Center OIDC service (`oidc.REGION.amazonaws.com`): RegisterClient,
 * StartDeviceAuthorization and CreateToken (device code and refresh token grants), with the
 * errors of the OAuth device flow (RFC 8628) the way the service sends them. A test plays the
 * person in the browser with `approve(userCode)`.
 */
export interface SsoOidcStandInOptions {
  clock?: Clock;
  /** StartDeviceAuthorization's expiresIn. Default 600 s, what the service gives. */
  deviceCodeSeconds?: number;
  /** StartDeviceAuthorization's interval. Default 1 s, what the service gives. */
  intervalSeconds?: number;
  /** CreateToken's expiresIn. Default 3600 s. */
  accessTokenSeconds?: number;
  /** Approve every device code the moment it is handed out (for tests that are not about signing in). */
  autoApprove?: boolean;
  port?: number;
}

export interface DeviceAuthorization {
  userCode: string;
  startUrl: string;
  clientName: string;
  approved: boolean;
}

export interface SsoOidcCall {
  operation: 'RegisterClient' | 'StartDeviceAuthorization' | 'CreateToken';
  grantType?: string;
  /** The error type answered, if any (AuthorizationPendingException, SlowDownException, …). */
  error?: string;
  at: number;
}

export interface SsoAccessTokenInfo {
  startUrl: string;
  expiresAt: number;
}

export interface SsoOidcStandIn {
  readonly url: string;
  readonly port: number;
  readonly calls: readonly SsoOidcCall[];
  count(operation: SsoOidcCall['operation'], grantType?: string): number;
  /** Every device authorization handed out, oldest first. */
  authorizations(): DeviceAuthorization[];
  /** The person approves the user code in the browser; false when no such code is pending. */
  approve(userCode: string): boolean;
  /** The next `times` device-code polls answer SlowDownException (as when a client polls too fast). */
  slowDown(times: number): void;
  /** Every refresh token stops working (the person signed out, or an admin revoked the session). */
  revokeRefreshTokens(): void;
  /** Every access token stops working at the portal (a 401). */
  revokeAccessTokens(): void;
  /** For the portal stand-in: the token's start URL and expiry, if it is live. */
  accessToken(token: string): SsoAccessTokenInfo | undefined;
  /** Client secrets, device codes, access and refresh tokens handed out, for leak scans. */
  issuedSecrets(): string[];
  close(): Promise<void>;
}

interface Client {
  clientId: string;
  clientSecret: string;
  clientName: string;
  scopes: string[];
}

interface Device {
  deviceCode: string;
  userCode: string;
  client: Client;
  startUrl: string;
  expiresAt: number;
  approved: boolean;
  used: boolean;
}

interface Grant {
  client: Client;
  startUrl: string;
}

const invalid = (type: string, error: string, description: string, status = 400) =>
  new JsonServiceError(status, type, { error, error_description: description });

class OidcStandIn implements SsoOidcStandIn {
  readonly calls: SsoOidcCall[] = [];
  private readonly clients = new Map<string, Client>();
  private readonly devices = new Map<string, Device>();
  private readonly accessTokens = new Map<string, SsoAccessTokenInfo & { revoked: boolean }>();
  private readonly refreshTokens = new Map<string, Grant & { revoked: boolean }>();
  private slowDowns = 0;
  readonly service = new JsonService((request) => this.route(request));

  constructor(private readonly options: SsoOidcStandInOptions & { clock: Clock }) {}

  get url(): string {
    return this.service.url;
  }
  get port(): number {
    return this.service.port;
  }

  count(operation: SsoOidcCall['operation'], grantType?: string): number {
    return this.calls.filter((c) => c.operation === operation && c.error === undefined && (grantType === undefined || c.grantType === grantType)).length;
  }

  authorizations(): DeviceAuthorization[] {
    return [...this.devices.values()].map((d) => ({ userCode: d.userCode, startUrl: d.startUrl, clientName: d.client.clientName, approved: d.approved }));
  }

  approve(userCode: string): boolean {
    const device = [...this.devices.values()].find((d) => d.userCode === userCode && !d.used);
    if (!device || this.options.clock.now() >= device.expiresAt) return false;
    device.approved = true;
    return true;
  }

  slowDown(times: number): void {
    this.slowDowns += times;
  }

  revokeRefreshTokens(): void {
    for (const grant of this.refreshTokens.values()) grant.revoked = true;
  }

  revokeAccessTokens(): void {
    for (const token of this.accessTokens.values()) token.revoked = true;
  }

  accessToken(token: string): SsoAccessTokenInfo | undefined {
    const info = this.accessTokens.get(token);
    if (!info || info.revoked || this.options.clock.now() >= info.expiresAt) return undefined;
    return { startUrl: info.startUrl, expiresAt: info.expiresAt };
  }

  issuedSecrets(): string[] {
    return [
      ...[...this.clients.values()].map((c) => c.clientSecret),
      ...this.devices.keys(),
      ...this.accessTokens.keys(),
      ...this.refreshTokens.keys(),
    ];
  }

  close(): Promise<void> {
    return this.service.close();
  }

  private route(request: JsonRequest): unknown {
    const at = this.options.clock.now();
    const operation =
      request.path === '/client/register' ? 'RegisterClient' : request.path === '/device_authorization' ? 'StartDeviceAuthorization' : request.path === '/token' ? 'CreateToken' : undefined;
    if (request.method !== 'POST' || operation === undefined) {
      throw new JsonServiceError(404, 'UnknownOperationException', { message: `no operation at ${request.method} ${request.path}` });
    }
    const call: SsoOidcCall = { operation, at };
    if (operation === 'CreateToken' && typeof request.body.grantType === 'string') call.grantType = request.body.grantType;
    this.calls.push(call);
    try {
      if (operation === 'RegisterClient') return this.registerClient(request.body);
      if (operation === 'StartDeviceAuthorization') return this.startDeviceAuthorization(request.body);
      return this.createToken(request.body);
    } catch (error) {
      if (error instanceof JsonServiceError) call.error = error.type;
      throw error;
    }
  }

  private registerClient(body: Record<string, unknown>): unknown {
    const { clientName, clientType, scopes } = body;
    if (typeof clientName !== 'string' || clientType !== 'public') {
      throw invalid('InvalidClientMetadataException', 'invalid_client_metadata', 'clientName and clientType public are required');
    }
    const client: Client = {
      clientId: opaque('client-', 16),
      clientSecret: opaque('clientsecret-'),
      clientName,
      scopes: Array.isArray(scopes) ? scopes.filter((s): s is string => typeof s === 'string') : [],
    };
    this.clients.set(client.clientId, client);
    const now = Math.floor(this.options.clock.now() / 1000);
    // The service registers clients for 90 days.
    return { clientId: client.clientId, clientSecret: client.clientSecret, clientIdIssuedAt: now, clientSecretExpiresAt: now + 90 * 86_400 };
  }

  private client(body: Record<string, unknown>): Client {
    const client = typeof body.clientId === 'string' ? this.clients.get(body.clientId) : undefined;
    if (!client || client.clientSecret !== body.clientSecret) throw invalid('InvalidClientException', 'invalid_client', 'Invalid client', 401);
    return client;
  }

  private startDeviceAuthorization(body: Record<string, unknown>): unknown {
    const client = this.client(body);
    if (typeof body.startUrl !== 'string' || !body.startUrl.startsWith('https://')) {
      throw invalid('InvalidRequestException', 'invalid_request', 'startUrl must be an https URL');
    }
    const seconds = this.options.deviceCodeSeconds ?? 600;
    const letters = 'BCDFGHJKLMNPQRSTVWXZ';
    const pick = () => Array.from({ length: 4 }, () => letters[randomInt(letters.length)]).join('');
    const device: Device = {
      deviceCode: opaque('devicecode-'),
      userCode: `${pick()}-${pick()}`,
      client,
      startUrl: body.startUrl,
      expiresAt: this.options.clock.now() + seconds * 1000,
      approved: this.options.autoApprove === true,
      used: false,
    };
    this.devices.set(device.deviceCode, device);
    return {
      deviceCode: device.deviceCode,
      userCode: device.userCode,
      verificationUri: `${this.url}/device`,
      verificationUriComplete: `${this.url}/device?user_code=${device.userCode}`,
      expiresIn: seconds,
      interval: this.options.intervalSeconds ?? 1,
    };
  }

  private createToken(body: Record<string, unknown>): unknown {
    const client = this.client(body);
    const now = this.options.clock.now();
    if (body.grantType === 'urn:ietf:params:oauth:grant-type:device_code') {
      const device = typeof body.deviceCode === 'string' ? this.devices.get(body.deviceCode) : undefined;
      if (!device || device.client !== client || device.used) throw invalid('InvalidGrantException', 'invalid_grant', 'Invalid grant provided');
      if (now >= device.expiresAt) throw invalid('ExpiredTokenException', 'expired_token', 'Device code has expired');
      if (!device.approved) {
        if (this.slowDowns > 0) {
          this.slowDowns -= 1;
          throw invalid('SlowDownException', 'slow_down', 'Client is polling too fast');
        }
        throw invalid('AuthorizationPendingException', 'authorization_pending', 'Authorization is still pending');
      }
      device.used = true;
      return this.issue({ client, startUrl: device.startUrl });
    }
    if (body.grantType === 'refresh_token') {
      const token = typeof body.refreshToken === 'string' ? body.refreshToken : '';
      const grant = this.refreshTokens.get(token);
      if (!grant || grant.revoked || grant.client !== client) throw invalid('InvalidGrantException', 'invalid_grant', 'Invalid refresh token provided');
      // Refresh tokens rotate: the one used is spent.
      grant.revoked = true;
      return this.issue(grant);
    }
    throw invalid('UnsupportedGrantTypeException', 'unsupported_grant_type', 'Unsupported grant type');
  }

  private issue(grant: Grant): unknown {
    const seconds = this.options.accessTokenSeconds ?? 3600;
    const accessToken = opaque('accesstoken-');
    this.accessTokens.set(accessToken, { startUrl: grant.startUrl, expiresAt: this.options.clock.now() + seconds * 1000, revoked: false });
    const out: Record<string, unknown> = { accessToken, tokenType: 'Bearer', expiresIn: seconds };
    // Only a registration with scopes (an [sso-session] with sso_registration_scopes) gets one.
    if (grant.client.scopes.length > 0) {
      const refreshToken = opaque('refreshtoken-');
      this.refreshTokens.set(refreshToken, { ...grant, revoked: false });
      out.refreshToken = refreshToken;
    }
    return out;
  }
}

/** Starts an SSO OIDC stand-in on 127.0.0.1 (a random port unless one is given). */
export async function startSsoOidcStandIn(options: SsoOidcStandInOptions = {}): Promise<SsoOidcStandIn> {
  const standIn = new OidcStandIn({ ...options, clock: options.clock ?? systemClock });
  await standIn.service.listen(options.port ?? 0);
  return standIn;
}
