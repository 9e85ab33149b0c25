import { RESOLUTION_VARIABLES } from '@vault/core';

/**
 * The variables a daemon is started with, from the environment of the command that starts it, and
 * why each is there. Nothing else: the daemon lives for hours, detached, and `/proc/PID/environ`
 * keeps what it was started with for that whole life — a key exported for `vault add --env`, a
 * token, the file passphrase would sit there and reach every credential_process it runs. Those
 * processes get this environment (minus nothing more: there is nothing secret left).
 */
export const DAEMON_VARIABLES: readonly string[] = [
  // credential_process runs through /bin/sh and needs to find its program; HOME holds ~/.aws/config,
  // the file keyring and the state directory.
  'PATH',
  'HOME',
  // Who the user is, language, time zone and temp dir: what a credential_process program may expect
  // of a login environment. Names, not secrets.
  'USER',
  'LOGNAME',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
  // Which config, keyring and state directory: the command's own, or the daemon would resolve
  // profiles differently from the command that asked.
  'AWS_CONFIG_FILE',
  'AWS_VAULT_BACKEND',
  'AWS_VAULT_FILE_DIR',
  'VAULT_STATE_DIR',
  // The pass backend: which store, program and folder (aws-vault's names, then pass's own), and
  // the gpg home that holds the key the store is encrypted to.
  'AWS_VAULT_PASS_PASSWORD_STORE_DIR',
  'AWS_VAULT_PASS_CMD',
  'AWS_VAULT_PASS_PREFIX',
  'PASSWORD_STORE_DIR',
  'PASSWORD_STORE_GPG_OPTS',
  'PASSWORD_STORE_KEY',
  'GNUPGHOME',
  // STS endpoints, region, AWS_MIN_TTL and the session and role durations: the environment
  // fingerprint a command's request carries (core chain/resolutionFingerprint.ts) must equal the daemon's, or the
  // daemon refuses to answer it.
  ...RESOLUTION_VARIABLES,
  // The keychain backend reaches the Secret Service over the session bus; libsecret and the
  // state directory use the XDG base directories.
  'DBUS_SESSION_BUS_ADDRESS',
  'XDG_RUNTIME_DIR',
  'XDG_DATA_HOME',
  'XDG_CONFIG_HOME',
  'XDG_STATE_HOME',
  'XDG_CACHE_HOME',
  // Reaching the network from behind a proxy or a TLS-inspecting middlebox: Node's extra CA
  // certificates for the daemon's own STS calls; proxies and AWS_CA_BUNDLE for a credential_process
  // that calls out (the AWS CLI, an SSO helper).
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
  'NODE_EXTRA_CA_CERTS',
  'AWS_CA_BUNDLE',
];

/** The daemon's environment: `DAEMON_VARIABLES` taken from `env`, every other variable left behind. */
export function daemonEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const scrubbed: NodeJS.ProcessEnv = {};
  for (const name of DAEMON_VARIABLES) if (env[name] !== undefined) scrubbed[name] = env[name];
  return scrubbed;
}
