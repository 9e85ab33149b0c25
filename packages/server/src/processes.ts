import { readFileSync } from 'node:fs';

// What the daemon, its client and the CLI need to know about processes by pid: a pid file's
// contents, whether a process still runs, what identifies it across a restart. Light on purpose
// (node:fs only): the CLI loads it with the client, without fastify.

/** The pid a pid file names, or undefined when it is missing or holds anything but a positive integer. */
export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** /proc/PID/stat: the state letter and the start time (field 22), or undefined off Linux. */
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[19];
  return state !== undefined && startTime !== undefined ? { state, startTime } : undefined;
}

/**
 * Whether a process exists and is not a zombie. A daemon killed with -9 whose parent does not reap
 * it stays a zombie, and `kill(pid, 0)` still succeeds on one. EPERM: it exists, as another user.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  return !(stat && (stat.state === 'Z' || stat.state === 'X'));
}
