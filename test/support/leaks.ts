import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Fails when any secret value appears in anything a test captured: output, logs, and every file
 * under the given directories (the encrypted keyring files included: they must not hold plaintext).
 */
export function findLeaks(secrets: Iterable<string>, texts: Record<string, string>, dirs: string[] = []): string[] {
  const haystacks: Array<[string, string]> = Object.entries(texts);
  for (const dir of dirs) for (const file of walk(dir)) haystacks.push([file, readFileSync(file).toString('latin1')]);
  const leaks: string[] = [];
  for (const secret of secrets) {
    if (!secret || secret.length < 8) continue;
    for (const [where, text] of haystacks) if (text.includes(secret)) leaks.push(`${where} contains a secret (${secret.slice(0, 4)}…)`);
  }
  return leaks;
}

function walk(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat) return [];
    if (stat.isDirectory()) return walk(path);
    return stat.isFile() && stat.size < 10_000_000 ? [path] : [];
  });
}

/** `/proc/PID/cmdline` of running processes: secrets must never be process arguments. */
export function processArguments(): string {
  const lines: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      lines.push(readFileSync(`/proc/${pid}/cmdline`).toString('utf8').replace(/\0/g, ' '));
    } catch {
      // the process ended while we looked
    }
  }
  return lines.join('\n');
}

/**
 * `/proc/PID/cmdline` of one process, read while it runs (arguments joined by spaces); '' once it
 * has ended.
 */
export function cmdlineOf(pid: number | undefined): string {
  if (pid === undefined) return '';
  try {
    return readFileSync(`/proc/${pid}/cmdline`).toString('utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/**
 * `/proc/PID/environ` of one process, one `NAME=value` a line; '' once it has ended. It is the
 * environment the process was started with (what its parent handed it), whatever it unset later:
 * so a process vault starts — the daemon, an exec child, a credential_process or mfa_process —
 * must be handed neither the file passphrase nor a long-term key. Only the vault CLI a test
 * launches holds AWS_VAULT_FILE_PASSPHRASE there, as a user's shell hands it over; scan what
 * vault starts, not that process.
 */
export function environOf(pid: number | undefined): string {
  if (pid === undefined) return '';
  try {
    return readFileSync(`/proc/${pid}/environ`).toString('utf8').replace(/\0/g, '\n');
  } catch {
    return '';
  }
}

/** The pids whose parent is `pid` (from every `/proc/PID/stat`): the processes it started that still run. */
export function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  const children: number[] = [];
  for (const entry of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so parse after the last ')'.
      const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '', 10);
      if (ppid === pid) children.push(Number.parseInt(entry, 10));
    } catch {
      // the process ended while we looked
    }
  }
  return children;
}
