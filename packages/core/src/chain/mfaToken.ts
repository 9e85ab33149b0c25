import { MFA_CODE } from '../config/validate.js';
import { VaultError } from '../errors.js';
import { withoutVaultSecrets } from '../vaultSecrets.js';
import { runBoundedProcess } from '../process/boundedProcess.js';

export interface MfaRequest {
  serial: string;
  profile: string;
}

/** Asks a person (terminal, ykman, …) for a code; supplied by the CLI. The daemon has none. */
export type MfaPrompt = (request: MfaRequest) => Promise<string>;

export interface MfaTokenOptions {
  /** `--mfa-token` / `-t`. */
  explicit?: string;
  /** The profile's `mfa_process`. */
  mfaProcess?: string;
  prompt?: MfaPrompt;
  env?: NodeJS.ProcessEnv;
  /** How long mfa_process may take (default 60 s: a person may have to touch a hardware key). */
  processTimeoutMs?: number;
}

export function checkMfaCode(code: string, from: string): string {
  const trimmed = code.trim();
  if (!MFA_CODE.test(trimmed)) {
    throw new VaultError('MFA_INVALID', `the MFA code from ${from} is not 6 digits`, {
      hint: 'enter the 6-digit code your MFA device shows',
    });
  }
  return trimmed;
}

/** `--mfa-token`, then `mfa_process`, then the prompt; a code is asked for at most once per call. */
export function mfaTokenSource(options: MfaTokenOptions): (request: MfaRequest) => Promise<string> {
  let used = false;
  return async (request) => {
    if (options.explicit !== undefined && !used) {
      used = true; // a one-time code cannot serve two STS calls
      return checkMfaCode(options.explicit, '--mfa-token');
    }
    if (options.mfaProcess) return checkMfaCode(await runMfaProcess(options.mfaProcess, request, options.env, options.processTimeoutMs), 'mfa_process');
    if (options.prompt) return checkMfaCode(await options.prompt(request), 'the prompt');
    throw new VaultError('MFA_REQUIRED', `profile ${request.profile} needs an MFA code for ${request.serial} and there is no terminal to ask`, {
      hint: 'pass --mfa-token CODE, or set mfa_process in the profile',
    });
  };
}

/** Output beyond this is not an MFA code; stop reading rather than buffer a runaway process. */
const MAX_MFA_PROCESS_OUTPUT = 1024;
const MFA_PROCESS_TIMEOUT_MS = 60_000;

function runMfaProcess(command: string, request: MfaRequest, env: NodeJS.ProcessEnv = process.env, timeoutMs = MFA_PROCESS_TIMEOUT_MS): Promise<string> {
  const from = `mfa_process of profile ${request.profile}`;
  return runBoundedProcess({
    command,
    env: { ...withoutVaultSecrets(env), AWS_VAULT_MFA_SERIAL: request.serial, AWS_VAULT_PROFILE: request.profile },
    // A person may have to answer it (a prompt, a hardware key): it keeps the terminal, so only
    // the shell itself is killed when it hangs.
    stdin: 'inherit',
    ownProcessGroup: false,
    timeoutMs,
    maxOutput: MAX_MFA_PROCESS_OUTPUT,
    errors: {
      timedOut: () =>
        new VaultError('MFA_REQUIRED', `${from} did not finish within ${timeoutMs / 1000} s`, {
          hint: 'run the mfa_process command by hand to see where it waits, or pass --mfa-token CODE',
        }),
      tooMuchOutput: () =>
        new VaultError('MFA_INVALID', `${from} printed more than ${MAX_MFA_PROCESS_OUTPUT} bytes`, { hint: 'make mfa_process print only the 6-digit code' }),
      notStarted: (cause) => new VaultError('MFA_REQUIRED', `${from} could not be started`, { hint: 'check the mfa_process command', cause }),
      failed: (code, signal) =>
        new VaultError('MFA_REQUIRED', `${from} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`, {
          hint: 'run the mfa_process command by hand to see why',
        }),
    },
  }).then((out) => out.toString('utf8'));
}
