import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, VAULT_BIN, run } from '../support/cli.js';
import { World } from '../support/world.js';

const COUNTER = join(REPO, 'test/support/signalCounter.mjs');
const PTY = join(REPO, 'test/support/ptyRun.py');
const PYTHON = '/usr/bin/python3';
const CTRL_C_TIMES = 4;

interface PtyResult {
  output: string;
  code: number | null;
  signal: number | null;
}

let world: World;
let runs = 0;

/** A fresh counts file for one run of the counting child. */
function countsFile(): string {
  runs += 1;
  return join(world.home, `signals-${runs}.json`);
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !check(); i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

/**
 * `vault exec account-a -- COUNTER FILE` on a pseudo-terminal, ^C typed CTRL_C_TIMES times once the
 * child is ready, 0.3 s apart. More than once because a duplicate can hide: a signal sent while the
 * same one is still pending for the child merges with it (POSIX signals do not queue), so a
 * forwarded copy that lands before the child has run its handler goes unseen. Each ^C is a fresh
 * chance for a duplicate to show.
 */
async function ctrlCOnTerminal(stdin: 'terminal' | '/dev/null'): Promise<Record<string, number>> {
  const file = countsFile();
  const redirect = stdin === '/dev/null' ? ' </dev/null' : '';
  const command = ['/bin/sh', '-c', `exec "$0" "$@"${redirect}`, process.execPath, VAULT_BIN, 'exec', 'account-a', '--', process.execPath, COUNTER, file];
  const ctrlCs = Array.from({ length: CTRL_C_TIMES }, (_, i) => (i === 0 ? [['send', '\u0003']] : [['pause', '0.3'], ['send', '\u0003']])).flat();
  const steps = [['file', `${file}.ready`], ...ctrlCs];
  const result = await run(PYTHON, [PTY, JSON.stringify(steps), '--', ...command], { env: world.env() });
  const pty = JSON.parse(result.stdout) as PtyResult;
  world.capture(`pty ${stdin}`, pty.output + result.stderr);
  expect(pty, pty.output).toMatchObject({ code: 0, signal: null });
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
}

/**
 * vault with no terminal at all, leading a process group of its own (spawned detached); `send`
 * signals it once the child is ready. Resolves to the child's counts.
 */
async function withoutTerminal(send: (vaultPid: number) => void): Promise<Record<string, number>> {
  const file = countsFile();
  const vault = spawn(process.execPath, [VAULT_BIN, 'exec', 'account-a', '--', process.execPath, COUNTER, file], {
    env: world.env(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  vault.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => vault.on('exit', (code) => resolve(code)));
  await until(() => existsSync(`${file}.ready`), 'the child to be ready');
  send(vault.pid!);
  expect(await exited, stderr).toBe(0);
  world.capture(`no terminal ${runs}`, stderr);
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
}

describe('vault exec and signals', () => {
  beforeAll(async () => {
    world = await World.create('file');
    await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
    // An MFA session and role credentials in the cache: the runs below need no code.
    const warm = await world.vault(['exec', 'account-a', '-t', '123456', '--', 'true']);
    expect(warm.code, warm.stderr).toBe(0);
  });

  afterAll(async () => {
    if (world) {
      const leaks = world.leaks();
      await world.close();
      expect(leaks).toEqual([]);
    }
  });

  it('each ^C on the terminal reaches the child once when standard input is the terminal', async () => {
    expect(await ctrlCOnTerminal('terminal')).toEqual({ SIGINT: CTRL_C_TIMES });
  });

  it('each ^C on the terminal reaches the child once when standard input is not a terminal (< /dev/null)', async () => {
    expect(await ctrlCOnTerminal('/dev/null')).toEqual({ SIGINT: CTRL_C_TIMES });
  });

  it('with no terminal, a SIGINT sent to vault alone reaches the child once', async () => {
    expect(await withoutTerminal((pid) => process.kill(pid, 'SIGINT'))).toEqual({ SIGINT: 1 });
  });

  it.each(['SIGTERM', 'SIGHUP'] as const)('a %s sent to vault alone reaches the child once', async (signal) => {
    expect(await withoutTerminal((pid) => process.kill(pid, signal))).toEqual({ [signal]: 1 });
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('a child killed by %s: vault dies of the same signal instead of exiting 128+n', async (signal) => {
    const result = await world.vault(['exec', 'account-a', '--', '/bin/sh', '-c', `kill -${signal.slice(3)} $$`]);
    expect(result.stderr).toBe('');
    expect({ code: result.code, signal: result.signal }).toEqual({ code: null, signal });
  });

  it('^C in a shell loop over vault exec on a terminal stops the loop (the shell sees its command killed by SIGINT)', async () => {
    // bash ends a loop on ^C only when the command it waited for died of SIGINT, not when it exited 130.
    const ready = join(world.home, 'loop.ready');
    const vault = `'${process.execPath}' '${VAULT_BIN}'`;
    const script = `for i in 1 2 3; do echo "run $i"; ${vault} exec account-a -- /bin/sh -c 'touch ${ready}; exec sleep 30'; rm -f ${ready}; done; echo finished`;
    const steps = [['file', ready], ['send', '\u0003']];
    const result = await run(PYTHON, [PTY, JSON.stringify(steps), '--', '/bin/bash', '-c', script], { env: world.env() });
    const pty = JSON.parse(result.stdout) as PtyResult;
    world.capture('pty loop', pty.output + result.stderr);
    expect(pty.output).not.toMatch(/run 2|finished/);
    expect(pty.signal, pty.output).toBe(2);
  });
});
