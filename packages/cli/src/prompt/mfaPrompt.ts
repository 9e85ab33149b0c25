import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { VaultError, type MfaPrompt } from '@vault/core';
import { DIALOGS, dialogPrompt, mfaQuestion, type DialogDriver } from './dialogPrompts.js';
import type { Ask } from './terminal.js';
import { ykmanPrompt } from './ykman.js';

/** aws-vault's prompt drivers, in its order (sorted by name): the first non-terminal one found wins. */
export const PROMPT_DRIVERS = ['kdialog', 'osascript', 'terminal', 'ykman', 'zenity'] as const;
export type PromptDriver = (typeof PROMPT_DRIVERS)[number];

/** The program each driver needs on PATH (terminal needs none). */
const PROGRAM: Record<Exclude<PromptDriver, 'terminal'>, string> = { kdialog: 'kdialog', osascript: 'osascript', ykman: 'ykman', zenity: 'zenity' };

export interface ChooseDriverOptions {
  /** `--prompt`, else AWS_VAULT_PROMPT. */
  explicit?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Whether a person is at a terminal (a controlling terminal can be opened). */
  terminal: boolean;
  /** Whether a program is on PATH (default: looked up in env.PATH). */
  onPath?: (program: string) => boolean;
}

/**
 * The driver to ask with, as aws-vault picks it: the one named; else `terminal` when there is a
 * terminal; else the first driver (in aws-vault's order) whose program is installed; else
 * `terminal` still, which reads piped standard input or says there is nothing to ask on.
 */
export function chooseDriver(options: ChooseDriverOptions): PromptDriver {
  const explicit = options.explicit?.trim();
  if (explicit) return checkDriver(explicit);
  if (options.terminal) return 'terminal';
  const onPath = options.onPath ?? ((program: string) => isOnPath(program, options.env.PATH));
  return PROMPT_DRIVERS.find((driver) => driver !== 'terminal' && onPath(PROGRAM[driver])) ?? 'terminal';
}

export function checkDriver(name: string): PromptDriver {
  if ((PROMPT_DRIVERS as readonly string[]).includes(name)) return name as PromptDriver;
  if (name === 'pass') {
    // aws-vault dropped it too, with the same advice.
    throw new VaultError('USAGE', 'the "pass" prompt driver of aws-vault is not supported (a TOTP kept beside the key is no second factor)', {
      hint: 'add `mfa_process = pass otp YOUR-MFA-SERIAL` to the profile if you want it anyway',
    });
  }
  throw new VaultError('USAGE', `unknown prompt driver "${name}"`, { hint: `use one of: ${PROMPT_DRIVERS.join(', ')}` });
}

/** `--prompt` / AWS_VAULT_PROMPT: how to get an MFA code from the person. */
export function mfaPrompt(driver: string, ask: Ask, env: NodeJS.ProcessEnv = process.env, options: { chosenForMe?: boolean } = {}): MfaPrompt {
  const chosen = checkDriver(driver);
  if (chosen === 'ykman') return ykmanPrompt(env);
  if (chosen !== 'terminal') return dialogPrompt(chosen as DialogDriver, env);
  return async ({ serial, profile }) => {
    try {
      return await ask(mfaQuestion(serial), { masked: true });
    } catch (error) {
      if (error instanceof VaultError && error.code === 'CANCELLED') {
        throw new VaultError('CANCELLED', `the MFA prompt was cancelled; nothing was sent to STS`, {
          hint: 'run the command again when you have the code, or pass it with --mfa-token (-t)',
        });
      }
      if (!(error instanceof VaultError) || error.code !== 'USAGE') throw error;
      const none = options.chosenForMe ? ` and no prompt program (${Object.keys(DIALOGS).join(', ')}, ykman) is installed` : '';
      throw new VaultError('MFA_REQUIRED', `profile ${profile} needs an MFA code for ${serial}: there is no terminal to ask on${none}`, {
        hint: 'pass it with --mfa-token (-t), set mfa_process in the profile, choose a driver with --prompt, or run the command in a terminal',
      });
    }
  };
}

function isOnPath(program: string, path: string | undefined): boolean {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}
