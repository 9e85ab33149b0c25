import {
  ConfigLoader,
  CredentialChain,
  CredentialKeyring,
  CredentialCache,
  VaultError,
  chainEnvironmentKey,
  configFilePath,
  isVaultError,
  readConfigFile,
  type Clock,
  type Keyring,
  type Logger,
  type StsGateway,
  type TemporaryCredentials,
} from '@vault/core';
import type { CredentialSource, CredentialSourceFactory, ResolvedCredentials, ResolveRequest, SessionSourceRequest } from './credentialSource.js';
import { UPSTREAM_MIN_LIFE_MS } from './sessions/refreshingCredentials.js';

/** Role credentials used as the base of a `role-arn/` AssumeRole need at least this much life. */
const ROLE_BASE_MIN_LIFE_MS = 5 * 60_000;

export interface CoreSourceOptions {
  /** The daemon's environment (STS endpoint variables, AWS_CONFIG_FILE, TTL overrides). */
  env: NodeJS.ProcessEnv;
  homeDir: string;
  keyring: () => Promise<Keyring>;
  sts: StsGateway;
  clock: Clock;
  logger?: Logger;
}

/**
 * The daemon's credential sources over @vault/core's chain. The MFA code a request carries is used
 * once, for the first GetSessionToken; after that the MFA session cached in the keyring serves every
 * refresh, and when it runs out the source says SESSION_NEEDS_MFA rather than prompting.
 */
export function coreSourceFactory(options: CoreSourceOptions): CredentialSourceFactory {
  const ownEnvironment = chainEnvironmentKey(options.env, options.homeDir);
  return {
    resolve: (request) => resolveForCommand(options, ownEnvironment, request),
    async create(request: SessionSourceRequest): Promise<CredentialSource> {
      let code = request.mfaToken;
      const chain = await chainFor(
        options,
        await options.keyring(),
        request,
        {
          mfa: async ({ serial }) => {
            const once = code;
            code = undefined; // a one-time code cannot serve two GetSessionToken calls
            if (once) return once;
            throw new VaultError('SESSION_NEEDS_MFA', `the MFA session for profile ${request.profile} (${serial}) has ended`, {
              hint: 'run `vault session renew ID` to enter a new MFA code',
            });
          },
        },
        // The daemon refreshes ahead on its own schedule, so it always asks STS for fresh role
        // credentials, and takes cached credentials as its output only with life enough to serve
        // it; a shorter one means a new GetSessionToken (a new MFA code: needs-mfa).
        { durationSeconds: request.durationSeconds, roleCache: false, minLifeMs: UPSTREAM_MIN_LIFE_MS, noSession: request.noSession === true },
      );
      const temporary = (credentials: { expiration?: Date; sessionToken?: string } & object): TemporaryCredentials => {
        if (!credentials.expiration || !credentials.sessionToken) {
          throw new VaultError('PROFILE_INVALID', `profile ${request.profile} resolves to long-term credentials, which the server does not hand out`, {
            hint: 'drop --no-session, or give the profile an mfa_serial or role_arn',
          });
        }
        return credentials as TemporaryCredentials;
      };
      // The credentials the session serves are the base for `role-arn/` requests, as in aws-vault's
      // ECS server: reusing them saves an AssumeRole per request while they have life left.
      let latest: TemporaryCredentials | undefined;
      const base = (): TemporaryCredentials | undefined =>
        latest && latest.expiration.getTime() - options.clock.now() > ROLE_BASE_MIN_LIFE_MS ? latest : undefined;
      return {
        profile: request.profile,
        region: chain.region,
        fetchCredentials: async () => {
          latest = temporary(await mapMfa(() => chain.credentials()));
          return latest;
        },
        assumeRole: (roleArn) => mapMfa(() => chain.assumeRoleFrom(roleArn, undefined, base())),
        mfaSessionExpiration: () => chain.mfaSessionExpiration(),
        renew: async (mfaToken) => {
          if (request.noSession) {
            // No MFA session to start: the code goes with the AssumeRole of the fetch that follows.
            code = mfaToken;
            return;
          }
          code = undefined;
          await chain.renewMfaSession(mfaToken);
        },
        // Without an MFA session there is nothing to judge: the next refresh needs a code anyway.
        mfaSessionUsable: async () => (request.noSession ? undefined : !(await chain.needsMfaCode())),
        ssoSignInUsable: async () => (chain.root.sso ? !(await chain.needsSsoSignIn()) : undefined),
      };
    },
  };
}

/** An MFA_REQUIRED from deep in the chain means, for a daemon session, that it needs renewing. */
async function mapMfa<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (isVaultError(error) && error.code === 'MFA_REQUIRED') {
      throw new VaultError('SESSION_NEEDS_MFA', error.message, { hint: 'run `vault session renew ID` to enter a new MFA code', cause: error });
    }
    throw error;
  }
}

/**
 * A command's credentials, resolved exactly as the command would resolve them itself (same
 * config, endpoint and TTL — checked through the environment fingerprint — and the same keyring
 * caches), but by the daemon that holds the keyring open.
 */
async function resolveForCommand(options: CoreSourceOptions, ownEnvironment: string, request: ResolveRequest): Promise<ResolvedCredentials> {
  if (request.environment !== ownEnvironment) {
    throw new VaultError('DAEMON_MISMATCH', 'the vault daemon was started with another configuration (config file, STS endpoint, region or TTL)', {
      hint: 'the command resolves credentials itself; restart the daemon from this shell to share it',
    });
  }
  const keyring = await options.keyring();
  if (request.backend !== undefined && request.backend !== keyring.backend) {
    throw new VaultError('DAEMON_MISMATCH', `the vault daemon uses the ${keyring.backend} backend, not ${request.backend}`, {
      hint: 'the command resolves credentials itself',
    });
  }
  let code = request.mfaToken;
  const chain = await chainFor(
    options,
    keyring,
    request,
    {
      mfa: async ({ serial }) => {
        const once = code;
        code = undefined;
        if (once) return once;
        // The command asks for the code itself (prompt, mfa_process) and resolves locally.
        throw new VaultError('MFA_REQUIRED', `profile ${request.profile} needs an MFA code for ${serial}`, { hint: 'pass one with --mfa-token' });
      },
    },
    {
      ...(request.noSession === undefined ? {} : { noSession: request.noSession }),
      ...(request.durationSeconds === undefined ? {} : { durationSeconds: request.durationSeconds }),
    },
  );
  // `credential_source = Environment | EcsContainer` means the command's shell: its exported keys,
  // its container variables. The daemon is handed neither (SECURITY.md §5) and must not answer
  // from its own environment instead. Deciding it here, where the config is read anyway, spares
  // every other cached command reading the config before it asks.
  const shellSource = chain.root.credentialSource;
  if (shellSource === 'Environment' || shellSource === 'EcsContainer') {
    throw new VaultError('DAEMON_MISMATCH', `profile ${request.profile} starts from the command's own credentials (credential_source = ${shellSource})`, {
      hint: 'the command resolves it itself',
    });
  }
  const credentials = await chain.credentials();
  if (!credentials.expiration || !credentials.sessionToken) {
    throw new VaultError('PROFILE_INVALID', `profile ${request.profile} resolves to a long-term key, which the daemon never hands out`, {
      hint: 'the command reads it from the keyring itself',
    });
  }
  return { credentials: credentials as TemporaryCredentials, region: chain.region };
}

/** The profile's chain over the daemon's config, keyring, STS gateway and clock. */
async function chainFor(
  options: CoreSourceOptions,
  keyring: Keyring,
  request: { profile: string; region?: string | undefined },
  deps: Pick<ConstructorParameters<typeof CredentialChain>[1], 'mfa'>,
  chainOptions: ConstructorParameters<typeof CredentialChain>[2],
): Promise<CredentialChain> {
  const file = await readConfigFile(configFilePath(options.env, options.homeDir));
  const profile = new ConfigLoader(file, { env: options.env, region: request.region }).load(request.profile);
  return new CredentialChain(
    profile,
    {
      credentials: new CredentialKeyring(keyring),
      cache: new CredentialCache(keyring),
      sts: options.sts,
      clock: options.clock,
      env: options.env,
      logger: options.logger,
      ...deps,
    },
    chainOptions,
  );
}
