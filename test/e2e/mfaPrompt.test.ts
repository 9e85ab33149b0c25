import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, VAULT_BIN, run } from '../support/cli.js';
import { MFA_SERIAL, World } from '../support/world.js';

const PTY = join(REPO, 'test/support/ptyRun.py');
const PYTHON = '/usr/bin/python3';
const PROMPT = `Enter MFA code for ${MFA_SERIAL}: `;

interface PtyResult {
  output: string;
  code: number | null;
  signal: number | null;
}

let world: World;

/** `vault exec account-a -- true` on a pseudo-terminal, typing `keys` once the MFA prompt shows. */
async function atThePrompt(keys: string, label: string): Promise<PtyResult> {
  // No MFA session may be cached, so that the prompt is shown.
  await world.vault(['clear']);
  const steps = [['text', PROMPT], ['send', keys]];
  const result = await run(PYTHON, [PTY, JSON.stringify(steps), '--', process.execPath, VAULT_BIN, 'exec', 'account-a', '--', 'true'], { env: world.env() });
  const pty = JSON.parse(result.stdout) as PtyResult;
  world.capture(`prompt ${label}`, pty.output + result.stderr);
  return pty;
}

describe('the MFA prompt on a terminal', () => {
  beforeAll(async () => {
    world = await World.create('file');
    await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
  });

  afterAll(async () => {
    if (world) {
      const leaks = world.leaks();
      await world.close();
      expect(leaks).toEqual([]);
    }
  });

  it('shows one * per digit typed, never the code, and the code works', async () => {
    const pty = await atThePrompt('123456\r', 'typed');
    expect(pty, pty.output).toMatchObject({ code: 0, signal: null });
    expect(pty.output).toContain(`${PROMPT}******`);
    expect(pty.output).not.toContain('123456');
    expect(world.sts.count('GetSessionToken')).toBeGreaterThanOrEqual(1);
  });

  it('a backspace takes back a * as well as the digit', async () => {
    const pty = await atThePrompt('1239\u007f456\r', 'backspace');
    expect(pty, pty.output).toMatchObject({ code: 0, signal: null });
    expect(pty.output).toContain(`${PROMPT}****\b \b***`);
  });

  it('^C at the prompt says the prompt was cancelled and exits 130, with no STS call', async () => {
    const before = world.mintingCalls();
    const pty = await atThePrompt('12\u0003', 'ctrl-c');
    expect(pty.code, pty.output).toBe(130);
    const lines = pty.output.split(/\r?\n/).filter((l) => l.startsWith('vault: '));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^vault: the MFA prompt was cancelled/);
    expect(pty.output).not.toMatch(/no terminal/);
    expect(world.mintingCalls()).toBe(before);
  });
});
