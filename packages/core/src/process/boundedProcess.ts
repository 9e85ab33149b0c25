import { spawn } from 'node:child_process';
import type { VaultError } from '../errors.js';

/**
 * A shell command that vault waits on for a secret (mfa_process, credential_process): bounded in
 * time and in output, so that a hung or runaway helper costs a command one error line instead of
 * hanging it (or a daemon session) for good.
 */
export interface BoundedProcessOptions {
  command: string;
  env: NodeJS.ProcessEnv;
  /** 'inherit' when a person may have to answer it (mfa_process); 'ignore' otherwise. */
  stdin: 'inherit' | 'ignore';
  timeoutMs: number;
  /** Output beyond this is not what was asked for: stop reading rather than buffer it. */
  maxOutput: number;
  /**
   * Run it in a process group of its own and kill the whole group when giving up, so the shell's
   * children (the real helper behind `sh -c`) die with it. This also detaches it from the
   * controlling terminal, so it is only for helpers that never need /dev/tty.
   */
  ownProcessGroup: boolean;
  /** The error for each way it can fail; the caller names the helper and the profile. */
  errors: {
    timedOut(): VaultError;
    tooMuchOutput(): VaultError;
    notStarted(cause: unknown): VaultError;
    failed(code: number | null, signal: NodeJS.Signals | null): VaultError;
  };
}

/** Runs the command through the shell and resolves with what it printed on stdout once it exits 0. */
export function runBoundedProcess(options: BoundedProcessOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(options.command, {
      shell: true,
      stdio: [options.stdin, 'pipe', 'inherit'],
      env: options.env,
      detached: options.ownProcessGroup,
    });
    let settled = false;
    const kill = () => {
      if (options.ownProcessGroup && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
          return;
        } catch {
          // The group is gone already (or was never made): fall back to the child itself.
        }
      }
      child.kill('SIGKILL');
    };
    const fail = (error: VaultError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      kill();
      child.stdout.destroy();
      reject(error);
    };
    // Our own timer rather than spawn's `timeout`, so a hung process is told apart from a killed
    // one, and so that the whole process group can be killed.
    const timer = setTimeout(() => fail(options.errors.timedOut()), options.timeoutMs);
    const chunks: Buffer[] = [];
    let size = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > options.maxOutput) {
        fail(options.errors.tooMuchOutput());
        return;
      }
      chunks.push(chunk);
    });
    child.on('error', (cause) => fail(options.errors.notStarted(cause)));
    child.on('close', (code, signal) => {
      if (code !== 0) {
        fail(options.errors.failed(code, signal));
        return;
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}
