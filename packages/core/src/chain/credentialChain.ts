import { createHash } from 'node:crypto';
import type { Env } from '../config/paths.js';
import { chainOf, type ProfileConfig } from '../config/profileConfig.js';
import { ROLE_CHAINING_MAX_SECONDS } from '../config/validate.js';
import type { Clock } from '../clock.js';
import type { AssumedRoleCredentials, Credentials, TemporaryCredentials } from '../credentials.js';
import { parseDurationMs } from '../duration.js';
import { VaultError } from '../errors.js';
import type { CredentialKeyring } from '../keyring/credentialKeyring.js';
import type { CredentialCache, CachedCredentialsType } from '../keyring/credentialCache.js';
import { silentLogger, type Logger } from '../logger.js';
import { resolveStsTarget } from '../sts/stsEndpoint.js';
import type { StsGateway } from '../sts/stsGateway.js';
import { fromAssumeRole } from './sources/fromAssumeRole.js';
import { fromCredentialProcess } from './sources/fromCredentialProcess.js';
import { fromCredentialSource, type CredentialSourceOptions } from './sources/fromCredentialSource.js';
import { fromWebIdentity, usesWebIdentity } from './sources/fromWebIdentity.js';
import { fromSessionToken } from './sources/fromSessionToken.js';
import { fromSso, ssoNeedsSignIn, ssoSignInAgain, type SsoDeps } from './sources/fromSso.js';
import { SsoTokenKeyring } from '../keyring/ssoTokenKeyring.js';
import { fromStoredKey } from './sources/fromStoredKey.js';
import { singleFlight } from './memoize.js';
import type { MfaRequest } from './mfaToken.js';

/** aws-vault's defaults: GetSessionToken credentials last 1 h as the output, 8 h as the MFA session behind role chains. */
const DEFAULT_SESSION_TOKEN_SECONDS = 3_600;
const DEFAULT_CHAINED_SESSION_TOKEN_SECONDS = 8 * 3_600;
const DEFAULT_ASSUME_ROLE_SECONDS = 3_600;
/** Reuse a cached MFA session until 5 min before it ends (aws-vault's default AWS_MIN_TTL). */
const MFA_SESSION_MIN_TTL_MS = 5 * 60_000;
/** Reuse cached role credentials while 15 min remain: botocore refreshes below that. */
const ROLE_MIN_TTL_MS = 15 * 60_000;

export interface ChainDeps {
  credentials: CredentialKeyring;
  cache: CredentialCache;
  sts: StsGateway;
  clock: Clock;
  env: Env;
  /** Supplies an MFA code; the CLI passes --mfa-token, mfa_process and the prompt in that order. */
  mfa?: (request: MfaRequest) => Promise<string>;
  logger?: Logger;
  /**
   * Told, in one line, when credentials could not be cached in the keyring (full disk, read-only
   * directory): the command still gets them, but the next one will not find them cached.
   */
  warn?: (line: string) => void;
  /** credential_source's metadata providers (default: @aws-sdk/credential-providers, lazily loaded). */
  credentialSource?: CredentialSourceOptions;
  /**
   * Shows an IAM Identity Center device sign-in (URL and code on stderr, the browser). Absent in
   * the daemon, which never prompts: a needed sign-in is SSO_LOGIN_REQUIRED there.
   */
  ssoSignIn?: SsoDeps['signIn'];
  /** Waits between sign-in polls; tests pass one that moves their clock. */
  ssoSleep?: SsoDeps['sleep'];
}

export interface ChainOptions {
  /** `--no-session`: no GetSessionToken; MFA goes on the first AssumeRole instead. */
  noSession?: boolean;
  /** `--duration`: the life of the credentials handed out. */
  durationSeconds?: number;
  /**
   * Read and write cached role credentials in the keyring (default true). The daemon turns it off:
   * it refreshes ahead on its own schedule and needs fresh credentials when it asks.
   */
  roleCache?: boolean;
  /**
   * The least life credentials handed out straight from a cache must still have (the daemon
   * passes what it promises its clients plus its refresh-ahead window). Without it, a cached
   * session is reused down to AWS_MIN_TTL (5 min), as aws-vault does. Only output credentials are
   * held to it: an MFA session that merely signs an AssumeRole keeps the AWS_MIN_TTL rule.
   */
  minLifeMs?: number;
}

export type ChainCredentials = Credentials & { assumedRoleArn?: string };

/**
 * What signs the first AssumeRole: the credentials, whether an MFA code still has to go with it,
 * the profile whose stored key they are (for error hints), and the cached credentials they came
 * from, if they did (so a session STS rejects can be dropped).
 */
interface ChainBase {
  credentials: Credentials;
  mfaOnFirstRole: boolean;
  /**
   * Temporary credentials that did not come from our own GetSessionToken (a credential_process
   * that prints a SessionToken): they may well be a role's, so the first AssumeRole is capped as
   * role chaining too rather than rejected by STS for asking more than 1 h.
   */
  firstHopChained?: boolean;
  keyOwner?: string;
  session?: { owner: string; discriminator: string; expiration: Date } | 'unsaved';
}

/** STS's word that the session signing the call is over: ExpiredToken, or a session token it no longer knows. */
function isDeadTokenError(error: unknown): boolean {
  return error instanceof VaultError && (error.code === 'STS_EXPIRED_TOKEN' || error.code === 'STS_INVALID_CLIENT_TOKEN');
}

/**
 * The STS calls for one profile: the stored key, an MFA session from GetSessionToken (cached in the
 * keyring and shared by every role that the same key and MFA device reach), then AssumeRole for
 * each role in the chain. Concurrent callers share one in-flight resolution.
 */
export class CredentialChain {
  readonly target: ProfileConfig;
  readonly root: ProfileConfig;
  /** Profiles with a role_arn, in the order their roles are assumed. */
  readonly roleHops: ProfileConfig[];
  /** The MFA device protecting the chain: the root's, else the first role profile's. */
  readonly mfaSerial: string | undefined;
  private readonly log: Logger;
  private lastMfaSession: TemporaryCredentials | undefined;
  /** An MFA session the keyring could not store: this chain keeps using it rather than asking again. */
  private unsavedMfaSession: TemporaryCredentials | undefined;
  readonly credentials: () => Promise<ChainCredentials>;

  constructor(
    profile: ProfileConfig,
    private readonly deps: ChainDeps,
    private readonly options: ChainOptions = {},
  ) {
    const chain = chainOf(profile);
    this.target = profile;
    this.root = chain[0]!;
    this.roleHops = chain.filter((p) => p.roleArn !== undefined);
    this.mfaSerial = chain.find((p) => p.mfaSerial !== undefined)?.mfaSerial;
    this.log = deps.logger ?? silentLogger;
    this.credentials = singleFlight(() => this.resolve());
  }

  get region(): string | undefined {
    return this.target.region;
  }

  /**
   * Whether resolving now would ask for an MFA code: an MFA device is configured and no cached MFA
   * session has enough life. The CLI asks this before handing a profile to the daemon, which never prompts.
   */
  async needsMfaCode(): Promise<boolean> {
    if (this.mfaSerial === undefined || usesWebIdentity(this.root) || this.root.sso) return false;
    // credential_source credentials go straight to AssumeRole with the code (no GetSessionToken).
    if (this.options.noSession || this.root.credentialSource) return true;
    for (const owner of this.mfaOwners()) {
      const cached = await this.deps.cache.find('sts.GetSessionToken', owner, this.mfaSerial, this.deps.clock.now(), this.mfaReuseMs());
      if (cached) return false;
    }
    // A credential_process root needs the code only when it prints a long-term key (then
    // GetSessionToken with the code follows); temporary credentials cannot take one, and asking
    // for a code that goes unused would be wrong (mfa_serial may merely come from [default]).
    if (this.root.credentialProcess) return (await this.longTermKey()).key.sessionToken === undefined;
    return true;
  }

  /** When the MFA session behind this chain ends, once it is known. */
  mfaSessionExpiration(): Date | undefined {
    return this.lastMfaSession?.expiration;
  }

  private minTtl(fallbackMs: number): number {
    return this.deps.env.AWS_MIN_TTL ? parseDurationMs(this.deps.env.AWS_MIN_TTL, 'AWS_MIN_TTL') : fallbackMs;
  }

  /**
   * How much life a cached GetSessionToken session must have left to be reused. When it is the
   * output itself (no role follows): also the caller's `minLifeMs`, and with an explicit
   * `--duration` the whole duration asked for — a command that asks for 4 h must not get the
   * 30 min left of an earlier session (aws-vault would hand it out).
   */
  private mfaReuseMs(): number {
    const floor = this.minTtl(MFA_SESSION_MIN_TTL_MS);
    if (this.roleHops.length > 0) return floor;
    return Math.max(floor, this.options.minLifeMs ?? 0, (this.options.durationSeconds ?? 0) * 1000);
  }

  /** The profiles a cached GetSessionToken session is filed under: the key's owners, or the credential_process profile. */
  private mfaOwners(): string[] {
    return this.root.credentialProcess ? [this.root.name] : this.root.keyProfileNames;
  }

  private ttlSeconds(envName: string, fallback: number): number {
    const raw = this.deps.env[envName];
    return raw ? Math.round(parseDurationMs(raw, envName) / 1000) : fallback;
  }

  private async resolve(): Promise<ChainCredentials> {
    if (this.roleHops.length === 0) return (await this.base()).credentials;
    const useCache = this.options.roleCache !== false;
    const fingerprint = this.fingerprint();
    if (useCache) {
      const cached = await this.deps.cache.find(
        'sts.AssumeRole',
        this.target.name,
        fingerprint,
        this.deps.clock.now(),
        Math.max(this.minTtl(ROLE_MIN_TTL_MS), this.options.minLifeMs ?? 0),
      );
      if (cached) {
        this.log.debug({ profile: this.target.name, expiration: cached.expiration }, 'using cached role credentials');
        return cached;
      }
    }
    if (usesWebIdentity(this.root)) {
      const role = await this.webIdentityThenRoles();
      if (useCache) await this.cache('sts.AssumeRole', this.target.name, fingerprint, role, 'role credentials');
      return role;
    }
    let base = await this.base();
    let role: AssumedRoleCredentials;
    try {
      role = await this.assumeRoles(base);
    } catch (error) {
      // STS says the cached credentials it was signed with are dead (expired early, or revoked).
      // Retrying with it cannot help: drop it and start again from the stored key — a new MFA
      // code for a command, SESSION_NEEDS_MFA for the daemon, which never prompts.
      if (!base.session || !isDeadTokenError(error)) throw error;
      await this.forgetCached(base.session, error);
      base = await this.base();
      role = await this.assumeRoles(base);
    }
    if (useCache) await this.cache('sts.AssumeRole', this.target.name, fingerprint, role, 'role credentials');
    return role;
  }

  /**
   * The credentials that sign the first AssumeRole, whether an MFA code still has to go with it,
   * and the profile whose stored key they are when they are the long-term key (for error hints).
   */
  private async base(): Promise<ChainBase> {
    // credential_source credentials are an instance's or a task's role (or whatever the environment
    // holds): AssumeRole takes them as they are, with the MFA code if any, as the AWS CLI sends it.
    const usesSessionToken = !this.options.noSession && this.root.credentialSource === undefined && (this.mfaSerial !== undefined || this.roleHops.length === 0);
    const discriminator = this.mfaSerial ?? '';
    if (usesSessionToken) {
      // Look in the cache before reading the stored key or running the credential_process: a
      // cache hit needs nothing else (and no MFA code).
      for (const owner of this.mfaOwners()) {
        const cached = await this.deps.cache.find('sts.GetSessionToken', owner, discriminator, this.deps.clock.now(), this.mfaReuseMs());
        if (cached) {
          this.log.debug({ profile: owner, expiration: cached.expiration }, 'using cached credentials');
          this.lastMfaSession = cached;
          return { credentials: cached, mfaOnFirstRole: false, session: { owner, discriminator, expiration: cached.expiration } };
        }
      }
      const unsaved = this.unsavedMfaSession;
      if (unsaved && unsaved.expiration.getTime() - this.deps.clock.now() > this.mfaReuseMs()) {
        return { credentials: unsaved, mfaOnFirstRole: false, session: 'unsaved' };
      }
    }
    const { owner, key } = await this.longTermKey();
    // Temporary credentials (from a credential_process) cannot call GetSessionToken.
    if (!usesSessionToken || key.sessionToken) {
      return {
        credentials: key,
        mfaOnFirstRole: this.mfaSerial !== undefined && (!key.sessionToken || this.root.credentialSource !== undefined),
        firstHopChained: key.sessionToken !== undefined,
        keyOwner: key.sessionToken || this.root.credentialProcess || this.root.credentialSource ? undefined : owner,
      };
    }
    return { credentials: await this.getSessionToken(owner, key), mfaOnFirstRole: false };
  }

  /** Forgets a session STS has rejected, so that nothing here or in the next command reuses it. */
  private async forgetCached(session: NonNullable<ChainBase['session']>, error: unknown): Promise<void> {
    this.log.warn({ code: (error as VaultError).code }, 'STS rejected the cached credentials; dropping them');
    this.lastMfaSession = undefined;
    this.unsavedMfaSession = undefined;
    if (session === 'unsaved') return;
    await this.deps.cache.forget('sts.GetSessionToken', session.owner, session.discriminator, session.expiration).catch(() => false);
  }

  private async getSessionToken(owner: string, key: Credentials, tokenCode?: string): Promise<TemporaryCredentials> {
    const durationSeconds =
      this.roleHops.length > 0
        ? this.ttlSeconds('AWS_CHAINED_SESSION_TOKEN_TTL', DEFAULT_CHAINED_SESSION_TOKEN_SECONDS)
        : (this.options.durationSeconds ?? this.ttlSeconds('AWS_SESSION_TOKEN_TTL', DEFAULT_SESSION_TOKEN_SECONDS));
    const code = this.mfaSerial ? (tokenCode ?? (await this.mfaCode())) : undefined;
    const target = resolveStsTarget(this.root, this.deps.env);
    this.log.debug({ profile: owner, endpoint: target.endpoint, durationSeconds, mfa: this.mfaSerial !== undefined }, 'GetSessionToken');
    const session = await fromSessionToken(
      this.deps.sts,
      key,
      target,
      { durationSeconds, serialNumber: this.mfaSerial, tokenCode: code },
      this.target.name,
      owner,
    );
    const cached = await this.cache('sts.GetSessionToken', owner, this.mfaSerial ?? '', session, this.mfaSerial ? 'MFA session' : 'GetSessionToken credentials');
    this.unsavedMfaSession = cached ? undefined : session;
    this.lastMfaSession = session;
    return session;
  }

  /**
   * Caches credentials in the keyring, best effort: STS has already issued them (and an MFA code
   * has been used up), so a keyring that cannot take the write — a full disk, a read-only
   * directory — must not cost the command its credentials. Says so, and returns false.
   */
  private async cache(kind: CachedCredentialsType, owner: string, discriminator: string, credentials: TemporaryCredentials, what: string): Promise<boolean> {
    try {
      await this.deps.cache.store(kind, owner, discriminator, credentials);
      return true;
    } catch (error) {
      const reason = error instanceof VaultError ? error.message : String(error);
      this.log.warn({ profile: owner, kind, code: error instanceof VaultError ? error.code : undefined }, 'could not cache credentials in the keyring');
      this.deps.warn?.(`could not cache the ${what} for profile ${owner} in the keyring (${reason}); using it without caching`);
      return false;
    }
  }

  /** Whether resolving now would need an IAM Identity Center device sign-in (asked before the daemon is handed the profile). */
  async needsSsoSignIn(): Promise<boolean> {
    if (!this.root.sso) return false;
    return ssoNeedsSignIn(this.root.sso, { tokens: this.ssoTokens(), clock: this.deps.clock });
  }

  /** A new device sign-in for the chain's start URL (`vault session renew` of an SSO session). */
  async renewSsoSignIn(): Promise<void> {
    if (!this.root.sso) return;
    await ssoSignInAgain(this.root.sso, this.root.name, this.ssoDeps());
  }

  private ssoTokens(): SsoTokenKeyring {
    return new SsoTokenKeyring(this.deps.cache.keyring);
  }

  private ssoDeps(): SsoDeps {
    return { tokens: this.ssoTokens(), clock: this.deps.clock, env: this.deps.env, signIn: this.deps.ssoSignIn, sleep: this.deps.ssoSleep, logger: this.log };
  }

  /**
   * The SSO root's role credentials: cached in the keyring like STS results (aws-vault's
   * `sso.GetRoleCredentials` items), else GetRoleCredentials with the start URL's sign-in.
   */
  private async ssoRoleCredentials(): Promise<TemporaryCredentials> {
    const sso = this.root.sso!;
    const useCache = this.options.roleCache !== false;
    const discriminator = `${sso.startUrl}#${sso.accountId}/${sso.roleName}`;
    const minLife = this.roleHops.length > 0 ? this.minTtl(MFA_SESSION_MIN_TTL_MS) : Math.max(this.minTtl(ROLE_MIN_TTL_MS), this.options.minLifeMs ?? 0);
    if (useCache) {
      const cached = await this.deps.cache.find('sso.GetRoleCredentials', this.root.name, discriminator, this.deps.clock.now(), minLife);
      if (cached) {
        this.log.debug({ profile: this.root.name, expiration: cached.expiration }, 'using cached IAM Identity Center role credentials');
        return cached;
      }
    }
    this.log.debug({ profile: this.root.name, accountId: sso.accountId, roleName: sso.roleName }, 'GetRoleCredentials');
    const credentials = await fromSso(sso, this.root.name, this.ssoDeps());
    if (useCache) await this.cache('sso.GetRoleCredentials', this.root.name, discriminator, credentials, 'IAM Identity Center role credentials');
    return credentials;
  }

  private async longTermKey(): Promise<{ owner: string; key: Credentials }> {
    if (this.root.credentialSource) {
      return { owner: this.root.name, key: await fromCredentialSource(this.root.credentialSource, this.root.name, this.deps.env, this.deps.credentialSource) };
    }
    if (this.root.sso) return { owner: this.root.name, key: await this.ssoRoleCredentials() };
    if (this.root.credentialProcess) {
      return { owner: this.root.name, key: await fromCredentialProcess(this.root.credentialProcess, this.root.name, this.deps.env) };
    }
    const { owner, credentials } = await fromStoredKey(this.root, this.deps.credentials, this.target);
    return { owner, key: credentials };
  }

  private async mfaCode(): Promise<string> {
    if (!this.deps.mfa) {
      throw new VaultError('MFA_REQUIRED', `profile ${this.target.name} needs an MFA code for ${this.mfaSerial}`, {
        hint: 'pass --mfa-token CODE, or set mfa_process in the profile',
      });
    }
    return this.deps.mfa({ serial: this.mfaSerial!, profile: this.target.name });
  }

  /**
   * A web identity root: AssumeRoleWithWebIdentity with the token as it is now (re-read at every
   * resolution, so a daemon refresh picks up a rotated file), then any roles chained on top. No MFA:
   * the token is the proof, and a CI job has nobody to type a code.
   */
  private async webIdentityThenRoles(): Promise<AssumedRoleCredentials> {
    const [first, ...rest] = this.roleHops;
    const durationSeconds =
      (rest.length === 0 ? this.options.durationSeconds : undefined) ?? first!.durationSeconds ?? this.ttlSeconds('AWS_ASSUME_ROLE_TTL', DEFAULT_ASSUME_ROLE_SECONDS);
    const target = resolveStsTarget(first!, this.deps.env);
    this.log.debug({ profile: first!.name, roleArn: first!.roleArn, endpoint: target.endpoint, durationSeconds }, 'AssumeRoleWithWebIdentity');
    const role = await fromWebIdentity(
      this.deps.sts,
      target,
      first!,
      { roleSessionName: first!.roleSessionName ?? this.defaultSessionName(), durationSeconds },
      this.deps.env,
    );
    if (rest.length === 0) return role;
    return this.assumeRoles({ credentials: role, mfaOnFirstRole: false, firstHopChained: true }, rest);
  }

  private async assumeRoles(base: ChainBase, hops: ProfileConfig[] = this.roleHops): Promise<AssumedRoleCredentials> {
    const { mfaOnFirstRole, keyOwner: startKeyOwner } = base;
    let credentials: Credentials = base.credentials;
    let result: AssumedRoleCredentials | undefined;
    for (const [index, hop] of hops.entries()) {
      const isLast = index === hops.length - 1;
      let durationSeconds = (isLast ? this.options.durationSeconds : undefined) ?? hop.durationSeconds ?? this.ttlSeconds('AWS_ASSUME_ROLE_TTL', DEFAULT_ASSUME_ROLE_SECONDS);
      // A role assumed with a role's credentials is "role chaining", which AWS caps at one hour.
      if ((index > 0 || base.firstHopChained === true) && durationSeconds > ROLE_CHAINING_MAX_SECONDS) {
        this.log.debug({ profile: hop.name, durationSeconds }, 'role chaining: duration capped at 1h');
        durationSeconds = ROLE_CHAINING_MAX_SECONDS;
      }
      const withMfa = index === 0 && mfaOnFirstRole;
      const target = resolveStsTarget(hop, this.deps.env);
      this.log.debug({ profile: hop.name, roleArn: hop.roleArn, endpoint: target.endpoint, durationSeconds }, 'AssumeRole');
      result = await fromAssumeRole(
        this.deps.sts,
        credentials,
        target,
        {
          roleArn: hop.roleArn!,
          roleSessionName: hop.roleSessionName ?? this.defaultSessionName(),
          durationSeconds,
          externalId: hop.externalId,
          serialNumber: withMfa ? this.mfaSerial : undefined,
          tokenCode: withMfa ? await this.mfaCode() : undefined,
          tags: hop.sessionTags,
          transitiveTagKeys: hop.transitiveSessionTags,
          sourceIdentity: hop.sourceIdentity,
        },
        this.target.name,
        index === 0 ? startKeyOwner : undefined,
      );
      credentials = result;
    }
    return result!;
  }

  /** What CloudTrail shows when role_session_name is not set; unique per call like aws-vault's. */
  private defaultSessionName(): string {
    return `vault-${this.deps.clock.now()}`;
  }

  /** Everything that shapes the role credentials, so a changed config never reuses a stale cache. */
  private fingerprint(): string {
    const shape = {
      keys: this.root.keyProfileNames,
      process: this.root.credentialProcess,
      webIdentity: [this.root.webIdentityTokenFile, this.root.webIdentityTokenProcess],
      credentialSource: this.root.credentialSource,
      sso: this.root.sso,
      mfa: this.mfaSerial,
      noSession: this.options.noSession === true,
      duration: this.options.durationSeconds,
      hops: this.roleHops.map((h) => [h.roleArn, h.externalId, h.roleSessionName, h.durationSeconds, h.sessionTags, h.transitiveSessionTags, h.sourceIdentity]),
    };
    return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 16);
  }

  /**
   * For the daemon's `role-arn/<ARN>` route: assume another role from this profile's credentials
   * (role chaining, so at most one hour).
   */
  async assumeRoleFrom(roleArn: string, roleSessionName?: string, base?: Credentials): Promise<AssumedRoleCredentials> {
    const from = base ?? (await this.credentials());
    return fromAssumeRole(
      this.deps.sts,
      from,
      resolveStsTarget(this.target, this.deps.env),
      { roleArn, roleSessionName: roleSessionName ?? this.defaultSessionName(), durationSeconds: ROLE_CHAINING_MAX_SECONDS },
      this.target.name,
    );
  }

  /** Starts a fresh MFA session with the given code (the daemon's `session renew`). */
  async renewMfaSession(tokenCode: string): Promise<void> {
    const { owner, key } = await this.longTermKey();
    await this.getSessionToken(owner, key, tokenCode);
  }
}
