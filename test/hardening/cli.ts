import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import { VAULT_BIN } from '../support/cli.js';
import { cmdlineOf } from '../support/leaks.js';

/**
 * The built CLI, run the way a user runs it, with what the hardening suites need on top of
 * test/support/cli.ts: the process's own `/proc/PID/cmdline`, read while it runs (secrets must never
 * be process arguments), and its wall time.
 */
export interface VaultRun {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** `/proc/PID/cmdline` of the vault process, read right after it started. */
  cmdline: string;
  ms: number;
}

export function runVault(args: string[], env: NodeJS.ProcessEnv, options: { input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<VaultRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [VAULT_BIN, ...args], { env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let cmdline = '';
    child.once('spawn', () => {
      cmdline = cmdlineOf(child.pid);
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        args,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        cmdline,
        ms: Math.round(performance.now() - started),
      });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Native or JS stack frames, or an error object dumped instead of a message. */
const STACK = /^\s+at \S|node:internal|\[Error|\bcode: '|Uncaught|SyntaxError|TypeError|RangeError|ReferenceError/m;

/**
 * A failure as vault must report it: a non-zero exit (not a signal), and on stderr exactly one
 * line, starting `vault: `, with no stack trace, matching `pattern`.
 */
export function expectOneLineError(run: VaultRun, pattern?: RegExp | string): string {
  const context = `vault ${run.args.join(' ')} → exit ${run.code} signal ${run.signal}\nstderr: ${JSON.stringify(run.stderr)}`;
  expect(run.signal, context).toBeNull();
  expect(run.code, context).not.toBe(0);
  expect(run.code, context).not.toBeNull();
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  expect(lines, context).toHaveLength(1);
  const line = lines[0]!;
  expect(line.startsWith('vault: '), context).toBe(true);
  expect(STACK.test(run.stderr), context).toBe(false);
  if (pattern !== undefined) {
    if (typeof pattern === 'string') expect(line, context).toContain(pattern);
    else expect(line, context).toMatch(pattern);
  }
  return line;
}
