import { VaultError, type MfaPrompt } from '@vault/core';
import { runPromptProgram } from './promptProgram.js';

/** The question every driver asks, as aws-vault words it. */
export function mfaQuestion(serial: string): string {
  return `Enter MFA code for ${serial}: `;
}

/** The dialog drivers: the program and the arguments that ask aws-vault's question. */
export const DIALOGS = {
  // zenity --entry: a one-line text entry; exit 1 when cancelled.
  zenity: (question: string) => ['zenity', ['--entry', '--title', 'vault', '--text', question]],
  // kdialog --inputbox TEXT: exit 1 when cancelled.
  kdialog: (question: string) => ['kdialog', ['--inputbox', question, '--title', 'vault']],
  // AppleScript's dialog with a text field; "User canceled" (exit 1) on Cancel.
  osascript: (question: string) => [
    'osascript',
    ['-e', `display dialog ${appleScriptString(question)} default answer "" buttons {"OK", "Cancel"} default button 1\ntext returned of the result\nreturn result`],
  ],
} satisfies Record<string, (question: string) => [string, string[]]>;

export type DialogDriver = keyof typeof DIALOGS;

/** A prompt that asks in a desktop dialog and takes what was typed (trimmed) as the code. */
export function dialogPrompt(driver: DialogDriver, env: NodeJS.ProcessEnv): MfaPrompt {
  return async ({ serial }) => {
    const [file, args] = DIALOGS[driver](mfaQuestion(serial));
    const result = await runPromptProgram(driver, file, args, { env, stderr: 'ignore' });
    if (result.code !== 0) {
      throw new VaultError('CANCELLED', `the MFA prompt (${driver}) was cancelled or failed; nothing was sent to STS`, {
        hint: 'run the command again when you have the code, or pass it with --mfa-token (-t)',
      });
    }
    return result.stdout.trim();
  };
}

/** A string literal AppleScript reads back as `text` (backslashes and quotes escaped). */
function appleScriptString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
