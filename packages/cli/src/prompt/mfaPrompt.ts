import { execFile } from 'node:child_process';
import { VaultError, type MfaPrompt } from '@vault/core';
import type { Ask } from './terminal.js';

export const PROMPT_DRIVERS = ['terminal', 'ykman'] as const;

/** `--prompt` / AWS_VAULT_PROMPT: how to get an MFA code from the person. */
export function mfaPrompt(driver: string, ask: Ask): MfaPrompt {
  switch (driver) {
    case 'terminal':
      return async ({ serial, profile }) => {
        try {
          return await ask(`Enter MFA code for ${serial}: `, { masked: true });
        } catch (error) {
          if (error instanceof VaultError && error.code === 'CANCELLED') {
            throw new VaultError('CANCELLED', `the MFA prompt was cancelled; nothing was sent to STS`, {
              hint: 'run the command again when you have the code, or pass it with --mfa-token (-t)',
            });
          }
          if (!(error instanceof VaultError) || error.code !== 'USAGE') throw error;
          throw new VaultError('MFA_REQUIRED', `profile ${profile} needs an MFA code for ${serial} and there is no terminal to ask on`, {
            hint: 'pass it with --mfa-token (-t), set mfa_process in the profile, or run the command in a terminal',
          });
        }
      };
    case 'ykman':
      // A YubiKey holding the OATH account named after the MFA serial, as aws-vault sets it up.
      return ({ serial }) =>
        new Promise((resolve, reject) => {
          execFile('ykman', ['oath', 'accounts', 'code', '--single', serial], { timeout: 60_000 }, (error, stdout) => {
            if (error) {
              reject(new VaultError('MFA_REQUIRED', `ykman could not produce a code for ${serial}`, {
                hint: 'check the YubiKey is inserted and holds that OATH account, or use --prompt terminal',
                cause: error,
              }));
            } else resolve(stdout.trim());
          });
        });
    default:
      throw new VaultError('USAGE', `unknown prompt driver "${driver}"`, { hint: `use one of: ${PROMPT_DRIVERS.join(', ')}` });
  }
}
