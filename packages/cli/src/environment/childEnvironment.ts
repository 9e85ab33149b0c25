import { formatExpiration, withoutVaultSecrets, type Credentials } from '@vault/core';

/**
 * Variables that would beat what vault hands the child in some SDK's credential chain, or point it
 * at another profile. They are removed before the child gets its own (docs/credential-server.md, the `exec` rule).
 */
export const SHADOWING_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_CREDENTIAL_EXPIRATION',
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_CREDENTIAL_FILE',
  'AWS_SDK_LOAD_CONFIG',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_EC2_METADATA_SERVICE_ENDPOINT',
] as const;

/** `env` for a child: without the shadowing variables, and without vault's own secrets (the file passphrase). */
export function withoutShadowing(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean = withoutVaultSecrets(env);
  for (const name of SHADOWING_VARIABLES) delete clean[name];
  return clean;
}

/** The variables that carry credentials to a child or an `export`, in aws-vault's order. */
export function credentialVariables(credentials: Credentials, profile: string, region: string | undefined): Array<[string, string]> {
  const vars: Array<[string, string]> = [];
  if (region) vars.push(['AWS_REGION', region], ['AWS_DEFAULT_REGION', region]);
  vars.push(['AWS_ACCESS_KEY_ID', credentials.accessKeyId], ['AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey]);
  if (credentials.sessionToken) {
    // AWS_SECURITY_TOKEN is what boto2-era tools read; aws-vault sets both.
    vars.push(['AWS_SESSION_TOKEN', credentials.sessionToken], ['AWS_SECURITY_TOKEN', credentials.sessionToken]);
  }
  if (credentials.expiration) vars.push(['AWS_CREDENTIAL_EXPIRATION', formatExpiration(credentials.expiration)]);
  vars.push(['AWS_VAULT', profile]);
  return vars;
}

/** The child's environment for env-mode `exec`. */
export function childEnvironment(base: NodeJS.ProcessEnv, credentials: Credentials, profile: string, region: string | undefined): NodeJS.ProcessEnv {
  const env = withoutShadowing(base);
  for (const [name, value] of credentialVariables(credentials, profile, region)) env[name] = value;
  return env;
}

/**
 * A session's `NO_PROXY`/`no_proxy` (set for IMDS, whose clients honour proxies) added to what the
 * user already has, so pointing a shell at vault does not send their other hosts through a proxy.
 */
export function mergeNoProxy(sessionEnv: Record<string, string>, userEnv: NodeJS.ProcessEnv): Record<string, string> {
  const merged = { ...sessionEnv };
  for (const name of ['NO_PROXY', 'no_proxy'] as const) {
    const ours = sessionEnv[name];
    const theirs = userEnv[name]?.trim();
    if (ours === undefined || !theirs) continue;
    const entries = theirs.split(',').map((e) => e.trim()).filter(Boolean);
    merged[name] = entries.includes(ours) ? theirs : [...entries, ours].join(',');
  }
  return merged;
}
