import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync } from 'node:fs';
import { VaultError } from '@vault/core';

export interface ProgramRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

/** Codes are 6 digits: anything past this is not an answer, so it is not buffered. */
const MAX_OUTPUT = 4096;

/**
 * Runs a prompt program (a dialog, ykman) to completion and hands back what it printed. No time
 * limit: a person is answering it. `stderr` may be a /dev/tty fd, closed here once the program
 * has it.
 */
export function runPromptProgram(
  driver: string,
  file: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; stderr: number | 'inherit' | 'ignore' },
): Promise<ProgramRun> {
  return new Promise((resolve, reject) => {
    const stdio: StdioOptions = ['ignore', 'pipe', options.stderr];
    const child = spawn(file, args, { env: options.env, stdio });
    if (typeof options.stderr === 'number') closeSync(options.stderr);
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk.toString('utf8');
    });
    child.on('error', (cause) =>
      reject(new VaultError('MFA_REQUIRED', `the ${driver} prompt could not be started`, {
        hint: `install ${file}, or choose another with --prompt (AWS_VAULT_PROMPT)`,
        cause,
      })),
    );
    child.on('close', (code, signal) => resolve({ code, signal, stdout }));
  });
}
