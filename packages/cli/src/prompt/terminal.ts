import { openSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { ReadStream } from 'node:tty';
import { VaultError } from '@vault/core';
import { promptOutput } from './terminalOutput.js';

export interface AskOptions {
  hidden?: boolean;
  /** Show one `*` per character typed instead of the character (MFA codes). */
  masked?: boolean;
  /** Read piped standard input before the terminal (`vault add` fed by a script). */
  preferStdin?: boolean;
}

export type Ask = (question: string, options?: AskOptions) => Promise<string>;

let stdinLines: AsyncIterator<string> | undefined;
let stdinReader: Interface | undefined;

/** Lines of piped standard input, shared by every prompt of this process. */
async function nextStdinLine(): Promise<string | undefined> {
  if (!stdinLines) {
    stdinReader = createInterface({ input: process.stdin, terminal: false });
    stdinLines = stdinReader[Symbol.asyncIterator]();
  }
  const next = await stdinLines.next();
  return next.done ? undefined : next.value;
}

function openTerminal(): ReadStream | undefined {
  if (process.stdin.isTTY) return process.stdin as ReadStream;
  try {
    return new ReadStream(openSync('/dev/tty', 'r+'));
  } catch {
    return undefined; // no controlling terminal (CI, a daemon, a pipe)
  }
}

/**
 * Asks on the terminal (prompt on stderr so stdout stays clean for `export`, or on /dev/tty when
 * stderr is a pipe, as under credential_process), hiding what is typed
 * when asked to; falls back to piped standard input when there is no terminal.
 */
export const ask: Ask = async (question, options = {}) => {
  const pipedStdin = !process.stdin.isTTY;
  if (options.preferStdin && pipedStdin) {
    const line = await nextStdinLine();
    if (line !== undefined) return line.trim();
  }
  const terminal = openTerminal();
  if (terminal) return readFromTerminal(terminal, question, options.hidden ? 'hidden' : options.masked ? 'masked' : 'plain');
  if (pipedStdin && !options.preferStdin) {
    const line = await nextStdinLine();
    if (line !== undefined) return line.trim();
  }
  throw new VaultError('USAGE', `cannot ask "${question.replace(/:\s*$/, '')}": no terminal and nothing on standard input`, {
    hint: 'run it in a terminal, or pass the value with a flag or environment variable',
  });
};

function readFromTerminal(input: ReadStream, question: string, echo: 'plain' | 'masked' | 'hidden'): Promise<string> {
  const shown = (char: string) => (echo === 'masked' ? '*' : char);
  const out = promptOutput();
  return new Promise((resolve, reject) => {
    let value = '';
    const wasRaw = input.isRaw;
    const done = (error?: Error) => {
      input.off('data', onData);
      if (input.isTTY) input.setRawMode(wasRaw);
      input.pause();
      if (input !== process.stdin) input.destroy();
      out.write('\n');
      out.close();
      if (error) reject(error);
      else resolve(value.trim());
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return done();
        if (char === '\u0003') return done(new VaultError('CANCELLED', 'the prompt was cancelled (^C)', { hint: 'nothing was changed' }));
        if (char === '\u0004' && value === '') return done(new VaultError('CANCELLED', 'the prompt was cancelled (end of input)', { hint: 'nothing was changed' }));
        if (char === '\u007f' || char === '\b') {
          if (value !== '' && echo !== 'hidden') out.write('\b \b');
          value = value.slice(0, -1);
        } else if (char >= ' ') {
          value += char;
          if (echo !== 'hidden') out.write(shown(char));
        }
      }
    };
    // Raw before the question shows: what is typed as soon as it appears must not be echoed by
    // the terminal itself (it would show the code), nor turn ^C into a signal.
    input.setRawMode(true);
    out.write(question);
    input.resume();
    input.on('data', onData);
  });
}
