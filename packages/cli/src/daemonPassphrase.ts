import type { ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { VaultError } from '@vault/core';

/**
 * The file passphrase travels to a daemon this command starts over a pipe on the daemon's fd 3 (the
 * first after stdin, stdout and stderr), never in its environment: `/proc/PID/environ` keeps what a
 * process was started with for its whole life, and every process it starts would inherit it.
 * The variable only says which fd to read; it carries no secret.
 */
export const PASSPHRASE_FD_VARIABLE = 'VAULT_PASSPHRASE_FD';
export const PASSPHRASE_FD = 3;

/** A passphrase is a line a person types; more than this on the pipe is not one. */
const MAX_PASSPHRASE_BYTES = 64 * 1024;

/** `spawn`'s stdio for a daemon that is handed a passphrase: nothing on 0-2, a pipe on fd 3. */
export const DAEMON_STDIO_WITH_PASSPHRASE = ['ignore', 'ignore', 'ignore', 'pipe'] as const;

/** Writes the passphrase to the daemon's fd 3 and closes the pipe, so the daemon reads it to EOF. */
export function sendPassphrase(child: ChildProcess, passphrase: string): void {
  const pipe = child.stdio[PASSPHRASE_FD] as Socket | null | undefined;
  if (!pipe) return;
  // A daemon that exits at once (another one answered first) closes its end unread: nothing to report.
  pipe.on('error', () => undefined);
  pipe.end(passphrase);
  // A `vault exec --server` lives as long as its child: the pipe must not keep it waiting.
  pipe.unref();
}

/** Reads the passphrase the starting command wrote to `fd`, once, to EOF, and closes the fd. */
export function receivePassphrase(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const fail = (cause?: unknown) =>
      reject(new VaultError('KEYRING_LOCKED', `the vault daemon could not read the file passphrase on fd ${fd}`, {
        hint: 'start the daemon with `vault server start`, which hands it the passphrase',
        cause,
      }));
    let pipe: Socket;
    try {
      pipe = new Socket({ fd, readable: true, writable: false });
    } catch (cause) {
      return fail(cause);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    pipe.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_PASSPHRASE_BYTES) {
        pipe.destroy();
        fail();
      } else chunks.push(chunk);
    });
    pipe.on('error', fail);
    pipe.on('end', () => {
      pipe.destroy();
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}
