import { closeSync, openSync, writeSync } from 'node:fs';

/**
 * Where a prompt's words go: standard error when it is the terminal, else the controlling
 * terminal itself. Under credential_process the SDK reads vault's stdout and keeps its stderr
 * in a pipe of its own, so a question (or ykman's "Touch your YubiKey") written there would never
 * reach the person; /dev/tty does.
 */
export function promptOutput(): { write(text: string): void; close(): void } {
  if (process.stderr.isTTY) return { write: (text) => void process.stderr.write(text), close: () => undefined };
  const fd = openTtyFd('w');
  if (fd === undefined) return { write: (text) => void process.stderr.write(text), close: () => undefined };
  return {
    write: (text) => {
      try {
        writeSync(fd, text);
      } catch {
        // the terminal went away: nothing more to show
      }
    },
    close: () => closeSync(fd),
  };
}

/** The stderr to give a helper that talks to the person (ykman): the terminal, not vault's stderr pipe. */
export function helperStderr(): number | 'inherit' {
  if (process.stderr.isTTY) return 'inherit';
  return openTtyFd('w') ?? 'inherit';
}

/** Whether there is a controlling terminal to ask on. */
export function hasTerminal(): boolean {
  if (process.stdin.isTTY) return true;
  const fd = openTtyFd('r');
  if (fd === undefined) return false;
  closeSync(fd);
  return true;
}

function openTtyFd(flags: 'r' | 'w'): number | undefined {
  try {
    return openSync('/dev/tty', flags);
  } catch {
    return undefined; // no controlling terminal (a daemon, CI, setsid)
  }
}
