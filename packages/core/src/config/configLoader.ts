import { VaultError } from '../errors.js';
import type { Tag } from '../sts/stsGateway.js';
import type { ConfigFile } from './configFile.js';
import type { Env } from './paths.js';
import { chainOf, describeChain, type ProfileConfig } from './profileConfig.js';
import type { ProfileSection, ProfileSetting } from './profileSection.js';
import { parseRoleSource } from './roleSource.js';
import { resolveSso } from './ssoSettings.js';
import {
  EXTERNAL_ID,
  MAX_ROLE_DURATION_SECONDS,
  MFA_SERIAL,
  MIN_DURATION_SECONDS,
  REGION,
  ROLE_ARN,
  ROLE_SESSION_NAME,
  SOURCE_IDENTITY,
  TAG_KEY,
  TAG_VALUE,
} from './validate.js';

/**
 * Settings `[default]` lends to profiles that leave them empty. Settings that define *which*
 * credentials a profile uses (role, source, process, per-role tags) are not lent: a role in
 * [default] must not silently turn every profile into that role.
 */
const LENT_BY_DEFAULT: readonly ProfileSetting[] = [
  'region',
  'mfa_serial',
  'mfa_process',
  'duration_seconds',
  'role_session_name',
  'endpoint_url',
  'sts_regional_endpoints',
];

export interface LoadOptions {
  env?: Env;
  /** `--region`, which beats everything. */
  region?: string;
}

/** Resolves profiles from one parsed config file; the only place that follows source_profile. */
export class ConfigLoader {
  constructor(
    private readonly file: ConfigFile,
    private readonly options: LoadOptions = {},
  ) {}

  get path(): string {
    return this.file.path;
  }

  /** Profile names declared in the file, in file order. */
  profileNames(): string[] {
    return [...this.file.profiles.keys()];
  }

  has(name: string): boolean {
    return this.file.profiles.has(name);
  }

  load(name: string): ProfileConfig {
    const profile = this.resolve(name, []);
    checkOneMfaDevice(profile);
    return profile;
  }

  private resolve(name: string, sourceTrail: string[]): ProfileConfig {
    if (sourceTrail.includes(name)) {
      throw new VaultError('PROFILE_CYCLE', `source_profile loop in ${this.file.path}: ${[...sourceTrail, name].join(' → ')}`, {
        hint: 'make the chain end at a profile with a stored key',
      });
    }
    const { merged, includeNames } = this.merge(name);
    const profile = this.toConfig(name, merged, includeNames);
    const sourceName = merged.source_profile;
    if (sourceName && sourceName !== name) {
      // A source with no section is taken as aws-vault takes it: a profile whose key is stored
      // (`vault add NAME`). Whether it is stored is asked of the keyring only when the chain needs
      // that key, so loading costs no keyring read (fromStoredKey says so if it is not there).
      profile.source = this.resolve(sourceName, [...sourceTrail, name]);
    }
    return profile;
  }

  /** The profile's own settings, then each included profile's, then [default]'s lent settings. */
  private merge(name: string): { merged: ProfileSection; includeNames: string[] } {
    const merged: ProfileSection = { name };
    const includeNames: string[] = [];
    const trail: string[] = [];
    let current: string | undefined = name;
    while (current !== undefined) {
      if (trail.includes(current)) {
        throw new VaultError('PROFILE_CYCLE', `include_profile loop in ${this.file.path}: ${[...trail, current].join(' → ')}`, {
          hint: 'remove one of the include_profile settings',
        });
      }
      trail.push(current);
      const section = this.file.profiles.get(current);
      if (!section) {
        if (current === name) break; // an undeclared profile may still have a stored key
        throw new VaultError(
          'PROFILE_NOT_FOUND',
          `profile ${trail.at(-2)} names include_profile ${current}, which is not in ${this.file.path} (chain: ${trail.join(' → ')})`,
          { hint: `add [profile ${current}] to the config or fix include_profile` },
        );
      }
      if (current !== name) includeNames.push(current);
      for (const [key, value] of Object.entries(section)) {
        if (key === 'name' || key === 'include_profile' || value === undefined || value === '') continue;
        if (merged[key] === undefined) merged[key] = value;
      }
      current = section.include_profile || undefined;
    }
    const defaults = name === 'default' ? undefined : this.file.profiles.get('default');
    if (defaults) {
      for (const key of LENT_BY_DEFAULT) {
        const value = defaults[key];
        if (merged[key] === undefined && value) merged[key] = value;
      }
    }
    return { merged, includeNames };
  }

  private toConfig(name: string, s: ProfileSection, includeNames: string[]): ProfileConfig {
    const env = this.options.env ?? {};
    const where = `profile ${name} in ${this.file.path}`;
    const check = (setting: string, value: string | undefined, shape: RegExp, what: string): string | undefined => {
      if (value === undefined) return undefined;
      if (!shape.test(value)) {
        throw new VaultError('PROFILE_INVALID', `${where}: ${setting} "${value}" is not ${what}`, {
          hint: `fix ${setting} (e.g. ${EXAMPLES[setting] ?? 'see the AWS CLI config docs'})`,
        });
      }
      return value;
    };
    const region = this.options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? s.region;
    const profile: ProfileConfig = {
      name,
      keyProfileNames: [name, ...includeNames],
      region: region ? checkRegion(region, where) : undefined,
      mfaSerial: check('mfa_serial', s.mfa_serial, MFA_SERIAL, 'an MFA device ARN or serial number'),
      mfaProcess: s.mfa_process,
      roleArn: check('role_arn', s.role_arn, ROLE_ARN, 'an IAM role ARN'),
      externalId: check('external_id', s.external_id, EXTERNAL_ID, 'a valid external id (2–1224 characters)'),
      roleSessionName: check('role_session_name', s.role_session_name, ROLE_SESSION_NAME, 'a valid role session name (2–64 of A-Z a-z 0-9 +=,.@_-)'),
      durationSeconds: s.duration_seconds === undefined ? undefined : parseDuration(s.duration_seconds, where),
      sessionTags: s.session_tags ? parseTags(s.session_tags, where) : [],
      transitiveSessionTags: s.transitive_session_tags ? splitList(s.transitive_session_tags) : [],
      sourceIdentity: check('source_identity', s.source_identity, SOURCE_IDENTITY, 'a valid source identity (2–64 characters)'),
      credentialProcess: s.credential_process,
      ...parseRoleSource(s, where, env),
      endpointUrl: s.endpoint_url ? checkUrl(s.endpoint_url, where) : undefined,
      stsRegionalEndpoints: parseRegionalEndpoints(s.sts_regional_endpoints, where),
      sso: resolveSso(s, this.file.ssoSessions ?? new Map(), where, this.file.path),
      declared: this.file.profiles.has(name),
    };
    return profile;
  }
}

/**
 * vault makes one MFA session per chain (GetSessionToken with one device, or MFA on the first
 * AssumeRole), so a chain whose profiles name two devices cannot be served as written. aws-vault
 * would send each role's own device with a fresh code; taking the first silently would instead
 * present the wrong device to a role whose trust policy names the other. Refused, naming both.
 */
function checkOneMfaDevice(profile: ProfileConfig): void {
  const chain = chainOf(profile);
  const first = chain.find((p) => p.mfaSerial !== undefined);
  const other = first && chain.find((p) => p.mfaSerial !== undefined && p.mfaSerial !== first.mfaSerial);
  if (!first || !other) return;
  throw new VaultError(
    'PROFILE_INVALID',
    `profile ${profile.name}: its chain ${describeChain(profile)} names two MFA devices, ${first.mfaSerial} (profile ${first.name}) and ${other.mfaSerial} (profile ${other.name})`,
    { hint: 'vault asks for one MFA code per chain: give the profiles of this chain one mfa_serial, or remove it from all but one' },
  );
}

const EXAMPLES: Record<string, string> = {
  role_arn: 'arn:aws:iam::123456789012:role/NAME',
  mfa_serial: 'arn:aws:iam::123456789012:mfa/USER',
  role_session_name: 'jane.doe',
  external_id: 'my-external-id',
  source_identity: 'jane.doe',
};

function checkRegion(region: string, where: string): string {
  if (!REGION.test(region)) {
    throw new VaultError('PROFILE_INVALID', `${where}: region "${region}" is not an AWS region name`, {
      hint: 'use a region such as eu-west-1 (check region, AWS_REGION, AWS_DEFAULT_REGION and --region)',
    });
  }
  return region;
}

function parseDuration(raw: string, where: string): number {
  const seconds = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(seconds) || seconds < MIN_DURATION_SECONDS || seconds > MAX_ROLE_DURATION_SECONDS) {
    throw new VaultError(
      'PROFILE_INVALID',
      `${where}: duration_seconds "${raw}" is out of range (${MIN_DURATION_SECONDS}–${MAX_ROLE_DURATION_SECONDS} seconds)`,
      { hint: 'set duration_seconds to a whole number of seconds between 900 and 43200' },
    );
  }
  return seconds;
}

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** `session_tags = Team=blue,Env=dev` as aws-vault reads it. */
function parseTags(raw: string, where: string): Tag[] {
  return splitList(raw).map((pair) => {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq).trim();
    const value = eq < 0 ? '' : pair.slice(eq + 1).trim();
    if (eq < 0 || !TAG_KEY.test(key) || !TAG_VALUE.test(value)) {
      throw new VaultError('PROFILE_INVALID', `${where}: session_tags entry "${pair}" is not KEY=VALUE`, {
        hint: 'write session_tags = Key1=Value1,Key2=Value2',
      });
    }
    return { key, value };
  });
}

function checkUrl(raw: string, where: string): string {
  try {
    const url = new URL(raw);
    if (url.protocol === 'http:' || url.protocol === 'https:') return raw.replace(/\/+$/, '');
  } catch {
    // fall through to the error below
  }
  throw new VaultError('PROFILE_INVALID', `${where}: endpoint_url "${raw}" is not an http(s) URL`, {
    hint: 'write endpoint_url = https://sts.example.com',
  });
}

function parseRegionalEndpoints(raw: string | undefined, where: string): 'regional' | 'legacy' | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'regional' || raw === 'legacy') return raw;
  throw new VaultError('PROFILE_INVALID', `${where}: sts_regional_endpoints "${raw}" must be regional or legacy`, {
    hint: 'set sts_regional_endpoints = regional',
  });
}
