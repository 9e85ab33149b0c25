import { accessSync, closeSync, constants as fs, openSync, readSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * `vault exec` without a server, on a Node that has process.execve (22.15+, 24): vault becomes the
 * command, as aws-vault does on Unix (syscall.Exec). No parent is left to forward signals or
 * translate exit codes: signals reach the command because it is the process they were sent to, its
 * exit status is the one the shell sees, and vault's memory (the keyring's secrets, the decrypted
 * file-backend passphrase) is gone with vault's image. Older Node keeps the child process path
 * (exec.ts runChild).
 */
type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

export function execveAvailable(): boolean {
  return typeof (process as { execve?: unknown }).execve === 'function';
}

/**
 * Replaces this process with the command, or returns false when it cannot be done safely and the
 * caller should spawn a child instead. A failing execve(2) aborts Node outright (core dump, exit
 * 134, no `vault:` line), so everything it could fail on is checked first: the file is found on
 * the command's PATH the way execvp(3) finds it, is a regular executable file, and starts like
 * something the kernel runs itself (an ELF image or a `#!` script). Anything else — not found,
 * not executable, a shebang-less shell script that execvp would hand to /bin/sh — goes the child
 * path, which reports it (127/126) or runs it as before.
 */
export function replaceProcess(command: string[], env: NodeJS.ProcessEnv): boolean {
  if (!execveAvailable()) return false;
  const [name, ...args] = command as [string, ...string[]];
  const file = resolveExecutable(name, env.PATH);
  if (file === undefined || !kernelRuns(file)) return false;
  // execve keeps fds without FD_CLOEXEC: stdio stays, and every fd Node or libuv opened (the
  // daemon's socket, the keyring's files) is opened close-on-exec and closes here.
  (process as unknown as { execve: Execve }).execve(file, [name, ...args], env);
  return true; // not reached: execve returns only by aborting
}

/** The file execvp(3) would run for NAME: as given when it holds a slash, else the first match on PATH. */
export function resolveExecutable(name: string, path: string | undefined): string | undefined {
  if (name === '') return undefined;
  if (name.includes('/')) return isExecutableFile(name) ? name : undefined;
  // An unset PATH: glibc's default search path (confstr _CS_PATH).
  for (const dir of (path ?? '/bin:/usr/bin').split(delimiter)) {
    const candidate = join(dir === '' ? '.' : dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, fs.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** ELF (\x7fELF) or a `#!` interpreter line: the formats execve(2) accepts on Linux and macOS (Mach-O too). */
function kernelRuns(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(4);
    const n = readSync(fd, head, 0, 4, 0);
    if (n >= 2 && head[0] === 0x23 && head[1] === 0x21) return true;
    if (n < 4) return false;
    const magic = head.readUInt32BE(0);
    return magic === 0x7f454c46 || MACH_O.has(magic) || MACH_O.has(head.readUInt32LE(0));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

// Mach-O 32/64-bit and universal ("fat") binaries (mach-o/loader.h, mach-o/fat.h).
const MACH_O = new Set([0xfeedface, 0xfeedfacf, 0xcafebabe]);
