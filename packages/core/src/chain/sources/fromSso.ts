import type { SSOOIDCClient } from '@aws-sdk/client-sso-oidc';
import type { Clock } from '../../clock.js';
import type { Env } from '../../config/paths.js';
import type { SsoConfig } from '../../config/profileConfig.js';
import type { TemporaryCredentials } from '../../credentials.js';
import { formatDuration } from '../../duration.js';
import { VaultError } from '../../errors.js';
import type { SsoToken, SsoTokenKeyring } from '../../keyring/ssoTokenKeyring.js';
import { silentLogger, type Logger } from '../../logger.js';
import { quietly } from '../../sts/sdkStsGateway.js';

type OidcModule = typeof import('@aws-sdk/client-sso-oidc');
type PortalModule = typeof import('@aws-sdk/client-sso');

let oidcSdk: Promise<OidcModule> | undefined;
let portalSdk: Promise<PortalModule> | undefined;
/** Loaded on the first IAM Identity Center call only: a cached `exec` never pays for them. */
const loadOidc = () => (oidcSdk ??= import('@aws-sdk/client-sso-oidc'));
const loadPortal = () => (portalSdk ??= import('@aws-sdk/client-sso'));

/**
 * A cached token is refreshed (or a new sign-in started) when less than this is left: the AWS SDKs'
 * SSO token provider refreshes 5 min before expiry (EXPIRE_WINDOW_MS in @aws-sdk/token-providers).
 */
export const SSO_TOKEN_MIN_TTL_MS = 5 * 60_000;
/** RFC 8628 §3.5: without an interval from the service, poll every 5 s; slow_down adds 5 s. */
const DEFAULT_POLL_SECONDS = 5;
const SLOW_DOWN_SECONDS = 5;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** The scope the AWS CLI asks for when an [sso-session] names none. */
const DEFAULT_SCOPES = ['sso:account:access'];

/** What a person needs to approve a sign-in: shown on stderr, and opened in the browser. */
export interface SsoSignInPrompt {
  profile: string;
  startUrl: string;
  verificationUri: string;
  /** The verification URL with the user code filled in (what the browser is sent to). */
  verificationUriComplete: string;
  userCode: string;
  expiresAt: Date;
}

export interface SsoDeps {
  tokens: SsoTokenKeyring;
  clock: Clock;
  env: Env;
  /**
   * Shows a device sign-in to the person. Undefined where nobody can approve one (the daemon):
   * then a sign-in that is needed is SSO_LOGIN_REQUIRED instead.
   */
  signIn?: (prompt: SsoSignInPrompt) => void | Promise<void>;
  /** Waits between CreateToken polls; tests pass one that moves their clock. */
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isTrue(value: string | undefined): boolean {
  return value?.toLowerCase() === 'true';
}

/**
 * The SDK's endpoint rules for the two services: AWS_ENDPOINT_URL_SSO_OIDC / AWS_ENDPOINT_URL_SSO,
 * then AWS_ENDPOINT_URL, none of them under AWS_IGNORE_CONFIGURED_ENDPOINT_URLS; otherwise the
 * SDK's regional endpoint. Read here from the chain's environment (not this process's), so the
 * SDK is told not to look them up again.
 */
export function ssoEndpoint(service: 'SSO_OIDC' | 'SSO', env: Env): string | undefined {
  if (isTrue(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)) return undefined;
  return env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL || undefined;
}

/** Neither service signs its calls (the bearer token is the credential): no AWS credentials are looked up. */
const NO_CREDENTIALS = { accessKeyId: 'unused', secretAccessKey: 'unused' };

function clientConfig(service: 'SSO_OIDC' | 'SSO', region: string, env: Env) {
  return {
    region,
    endpoint: ssoEndpoint(service, env),
    ignoreConfiguredEndpointUrls: true,
    credentials: NO_CREDENTIALS,
    maxAttempts: 3,
    requestHandler: { requestTimeout: 10_000, throwOnRequestTimeout: true },
  };
}

function errorName(error: unknown): string {
  return (error as { name?: string } | undefined)?.name ?? 'Error';
}

/**
 * IAM Identity Center: the profile's role credentials from the access portal's GetRoleCredentials,
 * with the sign-in for its start URL from the keyring (refreshed with its refresh token when it
 * runs low), or a new device sign-in. A 401 with a cached token means it was revoked: it is
 * dropped and the person signs in once more.
 */
export async function fromSso(sso: SsoConfig, profile: string, deps: SsoDeps): Promise<TemporaryCredentials> {
  const log = deps.logger ?? silentLogger;
  let { token, fresh } = await ssoToken(sso, profile, deps);
  try {
    return await getRoleCredentials(sso, profile, token, deps);
  } catch (error) {
    if (!(error instanceof Unauthorized) || fresh) throw error instanceof Unauthorized ? error.toVaultError() : error;
    log.warn({ profile, startUrl: sso.startUrl }, 'the access portal rejected the cached sign-in; dropping it');
    await deps.tokens.remove(sso.startUrl);
    ({ token, fresh } = await ssoToken(sso, profile, deps, { forceSignIn: true }));
    try {
      return await getRoleCredentials(sso, profile, token, deps);
    } catch (again) {
      throw again instanceof Unauthorized ? again.toVaultError() : again;
    }
  }
}

/** Whether a role-credential call now would need a device sign-in (no usable token, no refresh token). */
export async function ssoNeedsSignIn(sso: SsoConfig, deps: Pick<SsoDeps, 'tokens' | 'clock'>): Promise<boolean> {
  const cached = await deps.tokens.get(sso.startUrl);
  if (!cached) return true;
  if (cached.expiresAt.getTime() - deps.clock.now() > SSO_TOKEN_MIN_TTL_MS) return false;
  return !canRefresh(cached, deps.clock.now());
}

/** A new device sign-in for the start URL, whatever is cached (`vault session renew`). */
export async function ssoSignInAgain(sso: SsoConfig, profile: string, deps: SsoDeps): Promise<void> {
  await ssoToken(sso, profile, deps, { forceSignIn: true });
}

class Unauthorized extends Error {
  constructor(
    readonly profile: string,
    readonly sso: SsoConfig,
  ) {
    super('UnauthorizedException');
  }
  toVaultError(): VaultError {
    return new VaultError('SSO_LOGIN_REQUIRED', `the access portal rejected the sign-in for ${this.sso.startUrl} (profile ${this.profile})`, {
      hint: `sign in again: \`vault clear ${this.profile}\`, then run the command again`,
    });
  }
}

function canRefresh(token: SsoToken, now: number): boolean {
  return token.refreshToken !== undefined && token.client !== undefined && token.client.expiresAt.getTime() > now;
}

/** A live token for the start URL: cached, refreshed, or from a new sign-in (`fresh`). */
async function ssoToken(sso: SsoConfig, profile: string, deps: SsoDeps, options: { forceSignIn?: boolean } = {}): Promise<{ token: SsoToken; fresh: boolean }> {
  const log = deps.logger ?? silentLogger;
  const now = deps.clock.now();
  const cached = options.forceSignIn ? undefined : await deps.tokens.get(sso.startUrl);
  if (cached && cached.expiresAt.getTime() - now > SSO_TOKEN_MIN_TTL_MS) {
    log.debug({ profile, startUrl: sso.startUrl, expiration: cached.expiresAt }, 'using cached IAM Identity Center sign-in');
    return { token: cached, fresh: false };
  }
  if (cached && canRefresh(cached, now)) {
    const refreshed = await refresh(sso, profile, cached, deps);
    if (refreshed) return { token: refreshed, fresh: true };
  }
  if (!deps.signIn) {
    throw new VaultError('SSO_LOGIN_REQUIRED', `profile ${profile} needs a new IAM Identity Center sign-in at ${sso.startUrl}`, {
      hint: `run \`vault exec ${profile}\` (or \`vault session renew ID\` for a session) to sign in`,
    });
  }
  return { token: await deviceSignIn(sso, profile, deps, cached?.client), fresh: true };
}

async function oidcClient(sso: SsoConfig, env: Env): Promise<{ client: SSOOIDCClient; sdk: OidcModule }> {
  const sdk = await loadOidc();
  return { client: quietly(() => new sdk.SSOOIDCClient(clientConfig('SSO_OIDC', sso.region, env))), sdk };
}

function oidcFailure(error: unknown, what: string, profile: string, sso: SsoConfig, env: Env): VaultError {
  if (error instanceof VaultError) return error;
  const name = errorName(error);
  return new VaultError('SSO_FAILED', `IAM Identity Center ${what} failed for profile ${profile} (${name}) at ${ssoEndpoint('SSO_OIDC', env) ?? `the OIDC service in ${sso.region}`}`, {
    hint: 'check sso_region and the network, then run the command again',
    cause: error,
  });
}

/** CreateToken with the refresh token; undefined when it is refused (revoked, expired): sign in again. */
async function refresh(sso: SsoConfig, profile: string, cached: SsoToken, deps: SsoDeps): Promise<SsoToken | undefined> {
  const log = deps.logger ?? silentLogger;
  const { client, sdk } = await oidcClient(sso, deps.env);
  try {
    const out = await client.send(
      new sdk.CreateTokenCommand({
        clientId: cached.client!.clientId,
        clientSecret: cached.client!.clientSecret,
        grantType: 'refresh_token',
        refreshToken: cached.refreshToken,
      }),
    );
    const token = tokenFrom(out, sso, cached.client, deps.clock.now());
    // The service may hand out a new refresh token (they rotate); keep the old one when it does not.
    token.refreshToken ??= cached.refreshToken;
    await deps.tokens.store(sso.startUrl, token, deps.clock.now());
    log.debug({ profile, startUrl: sso.startUrl, expiration: token.expiresAt }, 'refreshed IAM Identity Center sign-in');
    return token;
  } catch (error) {
    const name = errorName(error);
    if (name === 'InvalidGrantException' || name === 'ExpiredTokenException' || name === 'InvalidClientException' || name === 'UnauthorizedClientException' || name === 'AccessDeniedException') {
      log.info({ profile, startUrl: sso.startUrl, error: name }, 'the refresh token was refused; a new sign-in is needed');
      await deps.tokens.remove(sso.startUrl);
      return undefined;
    }
    throw oidcFailure(error, 'token refresh', profile, sso, deps.env);
  } finally {
    client.destroy();
  }
}

function tokenFrom(
  out: { accessToken?: string; expiresIn?: number; refreshToken?: string },
  sso: SsoConfig,
  client: SsoToken['client'],
  now: number,
): SsoToken {
  if (!out.accessToken || out.expiresIn === undefined) {
    throw new VaultError('SSO_FAILED', `IAM Identity Center gave no access token for ${sso.startUrl}`, { hint: 'run the command again' });
  }
  return {
    accessToken: out.accessToken,
    expiresAt: new Date(now + out.expiresIn * 1000),
    ...(out.refreshToken ? { refreshToken: out.refreshToken } : {}),
    ...(client ? { client } : {}),
    region: sso.region,
  };
}

/**
 * The OAuth device authorization flow (RFC 8628): RegisterClient (or the cached registration),
 * StartDeviceAuthorization, the prompt, then CreateToken polled at the service's interval until
 * the person approves, slowing down by 5 s on each slow_down, until the code expires.
 */
async function deviceSignIn(sso: SsoConfig, profile: string, deps: SsoDeps, registered: SsoToken['client']): Promise<SsoToken> {
  const log = deps.logger ?? silentLogger;
  const sleep = deps.sleep ?? realSleep;
  const { client, sdk } = await oidcClient(sso, deps.env);
  try {
    let registration = registered && registered.expiresAt.getTime() - deps.clock.now() > SSO_TOKEN_MIN_TTL_MS ? registered : undefined;
    if (!registration) {
      const scopes = sso.sessionName === undefined ? undefined : sso.registrationScopes.length > 0 ? sso.registrationScopes : DEFAULT_SCOPES;
      const out = await client.send(new sdk.RegisterClientCommand({ clientName: `vault-${Math.floor(deps.clock.now() / 1000)}`, clientType: 'public', scopes }));
      registration = {
        clientId: out.clientId!,
        clientSecret: out.clientSecret!,
        expiresAt: new Date((out.clientSecretExpiresAt ?? 0) * 1000),
      };
    }
    const device = await client.send(
      new sdk.StartDeviceAuthorizationCommand({ clientId: registration.clientId, clientSecret: registration.clientSecret, startUrl: sso.startUrl }),
    );
    const started = deps.clock.now();
    const expiresAt = new Date(started + (device.expiresIn ?? 600) * 1000);
    await deps.signIn!({
      profile,
      startUrl: sso.startUrl,
      verificationUri: device.verificationUri ?? '',
      verificationUriComplete: device.verificationUriComplete ?? device.verificationUri ?? '',
      userCode: device.userCode ?? '',
      expiresAt,
    });
    let interval = device.interval ?? DEFAULT_POLL_SECONDS;
    const expired = () =>
      new VaultError('SSO_LOGIN_FAILED', `the sign-in code ${device.userCode} for ${sso.startUrl} expired before it was approved (profile ${profile})`, {
        hint: `run the command again and approve the code in the browser within ${formatDuration((device.expiresIn ?? 600) * 1000)}`,
      });
    for (;;) {
      await sleep(interval * 1000);
      if (deps.clock.now() >= expiresAt.getTime()) throw expired();
      try {
        const out = await client.send(
          new sdk.CreateTokenCommand({ clientId: registration.clientId, clientSecret: registration.clientSecret, grantType: DEVICE_GRANT, deviceCode: device.deviceCode }),
        );
        const token = tokenFrom(out, sso, registration, deps.clock.now());
        try {
          await deps.tokens.store(sso.startUrl, token, deps.clock.now());
        } catch (error) {
          // The sign-in is done: this command still gets its credentials; the next one signs in again.
          log.warn({ profile, code: error instanceof VaultError ? error.code : undefined }, 'could not cache the IAM Identity Center sign-in');
        }
        log.debug({ profile, startUrl: sso.startUrl, expiration: token.expiresAt }, 'signed in to IAM Identity Center');
        return token;
      } catch (error) {
        const name = errorName(error);
        if (name === 'AuthorizationPendingException') continue;
        if (name === 'SlowDownException') {
          interval += SLOW_DOWN_SECONDS;
          continue;
        }
        if (name === 'ExpiredTokenException') throw expired();
        if (name === 'AccessDeniedException') {
          throw new VaultError('SSO_LOGIN_FAILED', `the sign-in for ${sso.startUrl} was denied (profile ${profile})`, { hint: 'run the command again and allow access in the browser' });
        }
        throw oidcFailure(error, 'sign-in', profile, sso, deps.env);
      }
    }
  } catch (error) {
    throw oidcFailure(error, 'sign-in', profile, sso, deps.env);
  } finally {
    client.destroy();
  }
}

async function getRoleCredentials(sso: SsoConfig, profile: string, token: SsoToken, deps: SsoDeps): Promise<TemporaryCredentials> {
  const sdk = await loadPortal();
  const client = quietly(() => new sdk.SSOClient(clientConfig('SSO', sso.region, deps.env)));
  try {
    const out = await client.send(new sdk.GetRoleCredentialsCommand({ accessToken: token.accessToken, accountId: sso.accountId, roleName: sso.roleName }));
    const c = out.roleCredentials;
    if (!c?.accessKeyId || !c.secretAccessKey || !c.sessionToken || c.expiration === undefined) {
      throw new VaultError('SSO_FAILED', `the access portal gave no role credentials for profile ${profile}`, { hint: 'run the command again' });
    }
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: new Date(c.expiration) };
  } catch (error) {
    if (error instanceof VaultError) throw error;
    const name = errorName(error);
    if (name === 'UnauthorizedException') throw new Unauthorized(profile, sso);
    if (name === 'ForbiddenException' || name === 'ResourceNotFoundException') {
      throw new VaultError('SSO_FAILED', `the access portal gave no role ${sso.roleName} in account ${sso.accountId} to profile ${profile} (${name})`, {
        hint: 'check sso_account_id and sso_role_name: is that permission set assigned to you in that account?',
        cause: error,
      });
    }
    throw new VaultError('SSO_FAILED', `GetRoleCredentials failed for profile ${profile} (${name}) at ${ssoEndpoint('SSO', deps.env) ?? `the access portal in ${sso.region}`}`, {
      hint: 'check sso_region and the network, then run the command again',
      cause: error,
    });
  } finally {
    client.destroy();
  }
}
