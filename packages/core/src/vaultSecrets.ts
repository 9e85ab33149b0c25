import type { Env } from './config/paths.js';

/**
 * Variables that hand vault a secret of its own. Vault reads them and hands them to no process it
 * starts: not exec's command, not a credential_process or mfa_process, not the daemon (which gets
 * the passphrase over a pipe). aws-vault passes AWS_VAULT_FILE_PASSPHRASE on to `exec` children;
 * vault deliberately does not — a child that needs the keyring runs vault, which asks.
 */
export const VAULT_SECRET_VARIABLES = ['AWS_VAULT_FILE_PASSPHRASE'] as const;

/** A copy of `env` without vault's own secrets: what a process vault starts may be given. */
export function withoutVaultSecrets<E extends Env>(env: E): E {
  const clean = { ...env };
  for (const name of VAULT_SECRET_VARIABLES) delete clean[name];
  return clean;
}
