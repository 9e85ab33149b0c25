import type { Credentials } from '../../credentials.js';
import { VaultError } from '../../errors.js';
import { withoutVaultSecrets } from '../../vaultSecrets.js';
import { runBoundedProcess } from '../../process/boundedProcess.js';

/** A credential_process that prints more than this is broken; stop instead of buffering it. */
const MAX_OUTPUT = 64 * 1024;

/**
 * How long a credential_process may take: the Go SDK's processcreds DefaultTimeout (1 min). A
 * hung one would otherwise hang the command, or a daemon session for good.
 */
export const CREDENTIAL_PROCESS_TIMEOUT_MS = 60_000;

export interface CredentialProcessOptions {
  /** Default CREDENTIAL_PROCESS_TIMEOUT_MS; tests pass less. */
  timeoutMs?: number;
}

/**
 * Runs a profile's `credential_process` and reads its `Version: 1` JSON, as the AWS CLI does. It
 * gets `env` — the chain's environment, never this process's by default — minus vault's secrets.
 */
export async function fromCredentialProcess(
  command: string,
  profile: string,
  env: NodeJS.ProcessEnv,
  options: CredentialProcessOptions = {},
): Promise<Credentials> {
  const timeoutMs = options.timeoutMs ?? CREDENTIAL_PROCESS_TIMEOUT_MS;
  const error = (message: string, cause?: unknown, hint = 'run the credential_process command by hand to check it prints Version 1 JSON') =>
    new VaultError('PROFILE_NO_CREDENTIALS', `credential_process of profile ${profile} ${message}`, { hint, cause });
  const output = await runBoundedProcess({
    command,
    env: withoutVaultSecrets(env),
    stdin: 'ignore',
    // Nobody answers it (the daemon runs it too): its own process group, so a timeout kills
    // the helper behind the shell as well, not the shell alone.
    ownProcessGroup: true,
    timeoutMs,
    maxOutput: MAX_OUTPUT,
    errors: {
      timedOut: () => error(`did not finish within ${timeoutMs / 1000} s`, undefined, 'run the credential_process command by hand to see where it waits'),
      tooMuchOutput: () => error(`printed more than ${MAX_OUTPUT} bytes`),
      notStarted: (cause) => error('could not be started', cause),
      failed: (code, signal) => error(signal ? `was killed by ${signal}` : `exited with code ${code}`),
    },
  });
  let out: Record<string, unknown>;
  try {
    out = JSON.parse(output.toString('utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw error('did not print JSON', cause);
  }
  if (out.Version !== 1 || typeof out.AccessKeyId !== 'string' || typeof out.SecretAccessKey !== 'string') {
    throw error('printed JSON without Version 1, AccessKeyId and SecretAccessKey');
  }
  return {
    accessKeyId: out.AccessKeyId,
    secretAccessKey: out.SecretAccessKey,
    sessionToken: typeof out.SessionToken === 'string' ? out.SessionToken : undefined,
    expiration: typeof out.Expiration === 'string' ? new Date(out.Expiration) : undefined,
  };
}
