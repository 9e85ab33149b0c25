import { VaultError, type MfaPrompt } from '@vault/core';
import { runPromptProgram } from './promptProgram.js';
import { helperStderr } from './terminalOutput.js';

/**
 * A code from a YubiKey's OATH account, as aws-vault's ykman driver gets it: the account is
 * YKMAN_OATH_CREDENTIAL_NAME or the MFA serial, YKMAN_OATH_DEVICE_SERIAL picks a key, and
 * AWS_VAULT_YKMAN_VERSION 1–3 uses the older `oath code` form. What ykman says to the person
 * ("Touch your YubiKey…") goes to the terminal, never into a credential_process pipe.
 */
export function ykmanPrompt(env: NodeJS.ProcessEnv): MfaPrompt {
  return async ({ serial }) => {
    const account = env.YKMAN_OATH_CREDENTIAL_NAME || serial;
    const args: string[] = [];
    if (env.YKMAN_OATH_DEVICE_SERIAL) args.push('--device', env.YKMAN_OATH_DEVICE_SERIAL);
    if (['1', '2', '3'].includes(env.AWS_VAULT_YKMAN_VERSION ?? '')) args.push('oath', 'code', '--single', account);
    else args.push('oath', 'accounts', 'code', '--single', account);
    const result = await runPromptProgram('ykman', 'ykman', args, { env, stderr: helperStderr() });
    if (result.code !== 0) {
      throw new VaultError('MFA_REQUIRED', `ykman could not produce a code for ${account}`, {
        hint: 'check the YubiKey is inserted and holds that OATH account (YKMAN_OATH_CREDENTIAL_NAME), or use --prompt terminal',
      });
    }
    return result.stdout.trim();
  };
}
