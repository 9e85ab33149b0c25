import {
  DEFAULT_FEDERATION_TOKEN_SECONDS,
  VaultError,
  chainOf,
  consoleDestination,
  consoleSessionSeconds,
  federationEndpoint,
  federationName,
  fromStoredKey,
  getFederationToken,
  parseDurationMs,
  requestSigninToken,
  resolveStsTarget,
  signinUrl,
  toStsError,
  userNameOfArn,
  type ProfileConfig,
  type TemporaryCredentials,
} from '@vault/core';
import type { Context } from '../context.js';
import { credentialsFromDaemon } from '../daemonCredentials.js';
import { chainOptions, type CredentialOptions } from './options.js';
import { profileOrAwsProfile } from './profileArgument.js';

export interface LoginInput extends Omit<CredentialOptions, 'profile'> {
  profile?: string;
  stdout?: boolean;
  path?: string;
}

/**
 * `vault login`: opens the AWS console signed in as the profile. Role (and credential_process)
 * credentials go straight to the federation endpoint; a bare IAM user first gets a federation
 * token, since the console refuses GetSessionToken credentials and a long-term key must never be
 * in a URL. The sign-in URL is printed (--stdout) or handed to the browser, never logged.
 */
export async function login(input: LoginInput, ctx: Context): Promise<number> {
  const profileName = profileOrAwsProfile(input.profile, ctx.env, 'login');
  const options = chainOptions({ ...input, profile: profileName });
  const config = await ctx.config(options.region);
  const profile = config.load(profileName);
  const chain = chainOf(profile);
  // IAM Identity Center credentials are a role's too (the permission set's role in the account).
  const hasRole = chain.some((p) => p.roleArn !== undefined) || chain[0]!.sso !== undefined;
  const region = profile.region;

  // SessionDuration goes only with role credentials: the endpoint refuses it with federation ones.
  const roleCredentials = hasRole;
  const credentials: TemporaryCredentials =
    hasRole || chain[0]!.credentialProcess
      ? await roleOrProcessCredentials(profileName, options, ctx)
      : await federationCredentials(profile, options.durationSeconds, ctx);

  const endpoint = federationEndpoint(region, ctx.env);
  ctx.logger.debug({ profile: profileName, endpoint: new URL(endpoint).host, role: roleCredentials }, 'getSigninToken');
  const token = await requestSigninToken({
    endpoint,
    credentials,
    profile: profileName,
    ...(roleCredentials ? { sessionDurationSeconds: consoleSessionSeconds(credentials, ctx.clock.now()) } : {}),
  });
  const url = signinUrl(endpoint, consoleDestination(region, input.path), token);
  if (input.stdout) {
    ctx.stdout.write(`${url}\n`);
    return 0;
  }
  const { openInBrowser } = await import('../login/openBrowser.js');
  await openInBrowser(url, profileName);
  ctx.stderr.write(`Opened the AWS console for profile ${profileName} in your browser\n`);
  return 0;
}

/** A live daemon session of the profile first (no prompt, no STS call), then the chain. */
async function roleOrProcessCredentials(profile: string, options: ReturnType<typeof chainOptions>, ctx: Context): Promise<TemporaryCredentials> {
  const fromDaemon = await credentialsFromDaemon(ctx, { profile, ...options, preferSession: true });
  if (fromDaemon) {
    ctx.logger.debug({ profile, source: fromDaemon.source }, 'login with credentials from the daemon');
    return fromDaemon.credentials;
  }
  const credentials = await (await ctx.chain(profile, options)).credentials();
  if (!credentials.sessionToken || !credentials.expiration) {
    throw new VaultError('SIGNIN_FAILED', `profile ${profile} gives long-term credentials, which cannot sign in to the console`, {
      hint: 'make its credential_process print temporary credentials, or store the key with `vault add` and log in with that profile',
    });
  }
  return credentials as TemporaryCredentials;
}

/** GetFederationToken with the stored key, named after the IAM user (from GetCallerIdentity). */
async function federationCredentials(profile: ProfileConfig, durationSeconds: number | undefined, ctx: Context): Promise<TemporaryCredentials> {
  const { owner, credentials: key } = await fromStoredKey(profile, await ctx.credentialKeyring(), profile);
  const target = resolveStsTarget(profile, ctx.env);
  let arn: string;
  try {
    arn = (await ctx.sts().getCallerIdentity(key, target)).arn;
  } catch (error) {
    throw toStsError(error, { operation: 'GetCallerIdentity', profile: profile.name, endpoint: target.endpoint, keyOwner: owner });
  }
  const user = userNameOfArn(arn);
  if (user === undefined) {
    throw new VaultError('SIGNIN_FAILED', `the key stored for profile ${owner} is not an IAM user's (${arn})`, {
      hint: 'set role_arn in the profile to sign in as a role',
    });
  }
  const ttl = ctx.env.AWS_FEDERATION_TOKEN_TTL;
  const seconds = durationSeconds ?? (ttl ? Math.round(parseDurationMs(ttl, 'AWS_FEDERATION_TOKEN_TTL') / 1000) : DEFAULT_FEDERATION_TOKEN_SECONDS);
  ctx.logger.debug({ profile: profile.name, durationSeconds: seconds }, 'GetFederationToken');
  return getFederationToken(key, target, { name: federationName(user), durationSeconds: seconds, profile: profile.name, keyOwner: owner });
}
