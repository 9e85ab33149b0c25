import { configFilePath } from '../config/paths.js';
import { defaultFileDir } from '../keyring/openKeyring.js';

/**
 * The environment variables that change how a profile resolves: which config file, which STS
 * endpoint, which region, how long cached credentials must still live, how long the sessions and
 * roles it asks STS for last, where the file keyring is.
 */
export const RESOLUTION_VARIABLES = [
  'AWS_ENDPOINT_URL_STS',
  'AWS_ENDPOINT_URL',
  'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS',
  'AWS_STS_REGIONAL_ENDPOINTS',
  'AWS_USE_FIPS_ENDPOINT',
  'AWS_USE_DUALSTACK_ENDPOINT',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_MIN_TTL',
  'AWS_SESSION_TOKEN_TTL',
  'AWS_CHAINED_SESSION_TOKEN_TTL',
  'AWS_ASSUME_ROLE_TTL',
  // IAM Identity Center: where sign-ins and role credentials come from.
  'AWS_ENDPOINT_URL_SSO_OIDC',
  'AWS_ENDPOINT_URL_SSO',
] as const;

/**
 * A fingerprint of everything in the environment that decides what a profile resolves to. The
 * daemon answers a command's credential request only when the command's fingerprint equals its
 * own, so `AWS_CONFIG_FILE=other.ini vault exec …` never gets credentials resolved from another
 * config, endpoint, durations or keyring directory. Carries no secrets: paths, URLs, regions, TTLs.
 */
export function chainEnvironmentKey(env: NodeJS.ProcessEnv, homeDir: string): string {
  const values: Record<string, string> = {
    config: configFilePath(env, homeDir),
    fileDir: defaultFileDir(env, homeDir),
  };
  for (const name of RESOLUTION_VARIABLES) {
    const value = env[name];
    if (value !== undefined && value !== '') values[name] = value;
  }
  return JSON.stringify(values);
}
