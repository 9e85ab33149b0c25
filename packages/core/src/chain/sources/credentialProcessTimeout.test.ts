import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VaultError } from '../../errors.js';
import { fromCredentialProcess } from './fromCredentialProcess.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A killed process waits as a zombie until it is reaped: that is dead too.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('a credential_process that hangs', () => {
  let dir: string;
  let pidFile: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), `vault-chain-fixes-cp-${process.pid}-`));
    pidFile = join(dir, 'helper.pid');
  });

  afterEach(() => {
    // Whatever happened, leave no helper behind.
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined;
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('is stopped after its timeout with one line naming the profile, and the helper behind the shell dies too', async () => {
    // The shell starts the real helper and waits on it, as `credential_process = some-tool …` does.
    const command = `sleep 120 & echo $! > ${pidFile}; wait`;
    const error = await fromCredentialProcess(command, 'hung', process.env, { timeoutMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const helperPid = Number(readFileSync(pidFile, 'utf8'));
    expect(error).toBeInstanceOf(VaultError);
    expect((error as VaultError).toLine()).toMatch(/^credential_process of profile hung did not finish within 0\.3 s/);
    expect((error as VaultError).toLine()).not.toMatch(/\n/);
    // SIGKILL to the process group: bounded wait for the kernel to finish it, not a sleep in the code.
    const deadline = Date.now() + 5_000;
    while (alive(helperPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(alive(helperPid)).toBe(false);
  }, 15_000);

  it('the default bound is the Go SDK processcreds DefaultTimeout: one minute', async () => {
    const { CREDENTIAL_PROCESS_TIMEOUT_MS } = await import('./fromCredentialProcess.js');
    expect(CREDENTIAL_PROCESS_TIMEOUT_MS).toBe(60_000);
  });
});
