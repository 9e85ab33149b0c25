import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REPO, VAULT_BIN, run } from '../support/cli.js';
import { MFA_SERIAL, World } from '../support/world.js';

const SETSID = '/usr/bin/setsid';
const PYTHON = '/usr/bin/python3';
const PTY = join(REPO, 'test/support/ptyRun.py');
const AWS_CLI = '/usr/bin/aws';
const QUESTION = `Enter MFA code for ${MFA_SERIAL}: `;
const CODE = '123456';

/**
 * The prompt drivers, each against a stand-in program on PATH that records how it was called and
 * answers like the real one; vault runs under setsid, so it has no terminal to ask on.
 */
describe('MFA prompt drivers: zenity, kdialog, osascript, ykman (stand-ins on PATH)', () => {
  let world: World;
  let bin: string;
  let calls: string;

  /** A stand-in: appends `NAME ARG…` (one line per argument) to the log, then prints `answer` and exits `code`. */
  const standIn = (name: string, answer = CODE, code = 0, stderr = '') => {
    writeFileSync(
      join(bin, name),
      `#!/bin/sh\n{ echo "$0"; for a in "$@"; do printf '[%s]\\n' "$a"; done; } >> '${calls}'\n${stderr ? `echo '${stderr}' >&2\n` : ''}echo '${answer}'\nexit ${code}\n`,
    );
    chmodSync(join(bin, name), 0o755);
  };
  /** `vault exec central-account -- /bin/true` with no controlling terminal and only the stand-ins on PATH. */
  const execWithoutTerminal = async (extra: NodeJS.ProcessEnv = {}, args: string[] = []) => {
    await world.vault(['clear']);
    const env = world.env({ PATH: bin, ...extra });
    const result = await run(SETSID, ['--wait', process.execPath, VAULT_BIN, ...args, 'exec', 'central-account', '--', '/bin/true'], { env, timeoutMs: 60_000 });
    world.capture(`setsid vault ${args.join(' ')} stdout`, result.stdout);
    world.capture(`setsid vault ${args.join(' ')} stderr`, result.stderr);
    return result;
  };
  const recorded = () => readFileSync(calls, 'utf8');

  beforeAll(async () => {
    world = await World.create('file');
    bin = join(world.home, 'bin');
    calls = join(world.home, 'prompt-calls.log');
    const added = await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
    expect(added.code).toBe(0);
  });
  beforeEach(() => {
    rmSync(bin, { recursive: true, force: true });
    mkdirSync(bin);
    writeFileSync(calls, '');
    world.sts.resetCalls();
  });
  afterAll(async () => {
    await world?.close();
  });

  it('--prompt zenity asks with `zenity --entry` and the code it returns reaches STS', async () => {
    standIn('zenity');
    const result = await execWithoutTerminal({}, ['--prompt', 'zenity']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(recorded()).toBe(`${bin}/zenity\n[--entry]\n[--title]\n[vault]\n[--text]\n[${QUESTION}]\n`);
    expect(world.sts.count('GetSessionToken')).toBe(1);
  });

  it('AWS_VAULT_PROMPT=kdialog asks with `kdialog --inputbox`', async () => {
    standIn('kdialog', `  ${CODE}  `);
    const result = await execWithoutTerminal({ AWS_VAULT_PROMPT: 'kdialog' });
    expect(result.code).toBe(0);
    expect(recorded()).toBe(`${bin}/kdialog\n[--inputbox]\n[${QUESTION}]\n[--title]\n[vault]\n`);
  });

  it('--prompt osascript asks with an AppleScript dialog', async () => {
    standIn('osascript');
    const result = await execWithoutTerminal({}, ['--prompt', 'osascript']);
    expect(result.code).toBe(0);
    expect(recorded()).toBe(
      `${bin}/osascript\n[-e]\n[display dialog "${QUESTION}" default answer "" buttons {"OK", "Cancel"} default button 1\ntext returned of the result\nreturn result]\n`,
    );
  });

  it('--prompt ykman reads the OATH account named after the MFA serial (or YKMAN_OATH_CREDENTIAL_NAME, on YKMAN_OATH_DEVICE_SERIAL)', async () => {
    standIn('ykman');
    expect((await execWithoutTerminal({}, ['--prompt', 'ykman'])).code).toBe(0);
    expect(recorded()).toBe(`${bin}/ykman\n[oath]\n[accounts]\n[code]\n[--single]\n[${MFA_SERIAL}]\n`);
    writeFileSync(calls, '');
    expect((await execWithoutTerminal({ YKMAN_OATH_CREDENTIAL_NAME: 'aws:central', YKMAN_OATH_DEVICE_SERIAL: '1234567' }, ['--prompt', 'ykman'])).code).toBe(0);
    expect(recorded()).toBe(`${bin}/ykman\n[--device]\n[1234567]\n[oath]\n[accounts]\n[code]\n[--single]\n[aws:central]\n`);
  });

  it('with no terminal and no --prompt, the first installed driver in aws-vault’s order is used (kdialog before zenity)', async () => {
    standIn('zenity');
    standIn('kdialog');
    const result = await execWithoutTerminal();
    expect(result.code).toBe(0);
    expect(recorded().split('\n')[0]).toBe(`${bin}/kdialog`);
  });

  it('a dialog cancelled (exit 1): one vault: line, exit 130, nothing sent to STS', async () => {
    standIn('zenity', '', 1);
    const result = await execWithoutTerminal({}, ['--prompt', 'zenity']);
    expect(result.code).toBe(130);
    expect(result.stderr).toBe('vault: the MFA prompt (zenity) was cancelled or failed; nothing was sent to STS; run the command again when you have the code, or pass it with --mfa-token (-t)\n');
    expect(world.mintingCalls()).toBe(0);
  });

  it('no terminal and no prompt program: one line saying so and what to do, exit 1', async () => {
    const result = await execWithoutTerminal();
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `vault: profile central-account needs an MFA code for ${MFA_SERIAL}: there is no terminal to ask on and no prompt program (zenity, kdialog, osascript, ykman) is installed; ` +
        'pass it with --mfa-token (-t), set mfa_process in the profile, choose a driver with --prompt, or run the command in a terminal\n',
    );
    expect(world.mintingCalls()).toBe(0);
  });

  it('an unknown --prompt is refused before anything runs', async () => {
    const result = await world.vault(['--prompt', 'zentiy', 'exec', 'central-account', '--', '/bin/true']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('vault: unknown prompt driver "zentiy"; use one of: kdialog, osascript, terminal, ykman, zenity\n');
  });

  describe('under credential_process (the AWS CLI on a terminal, holding vault’s stdout and stderr in pipes)', () => {
    interface PtyResult {
      output: string;
      code: number | null;
    }
    const awsOnTerminal = async (steps: Array<[string, string]>, extra: NodeJS.ProcessEnv = {}) => {
      await world.vault(['clear']);
      // AWS_PAGER: the CLI would page its output through less on a terminal.
      const env = world.env({ PATH: `${bin}:/usr/bin:/bin`, AWS_PAGER: '', ...extra });
      const result = await run(PYTHON, [PTY, JSON.stringify(steps), '--', AWS_CLI, 'sts', 'get-caller-identity', '--profile', 'via-process', '--endpoint-url', world.sts.url, '--output', 'json'], {
        env,
        timeoutMs: 60_000,
      });
      const pty = JSON.parse(result.stdout) as PtyResult;
      world.capture('pty output', pty.output);
      return pty;
    };

    it('the terminal prompt is shown on the terminal and the typed code works', async () => {
      const pty = await awsOnTerminal([['text', QUESTION], ['send', `${CODE}\r`]]);
      expect(pty.code, pty.output).toBe(0);
      expect(pty.output).toContain(`${QUESTION}******`);
      expect(pty.output).toMatch(/"Arn": "arn:aws:sts::222222222222:assumed-role\/account-a-assume-role\//);
    }, 90_000);

    it('what ykman tells the person ("Touch your YubiKey") reaches the terminal, and the code reaches STS', async () => {
      standIn('ykman', CODE, 0, 'Touch your YubiKey...');
      const pty = await awsOnTerminal([], { AWS_VAULT_PROMPT: 'ykman' });
      expect(pty.code, pty.output).toBe(0);
      expect(pty.output).toContain('Touch your YubiKey...');
      expect(pty.output).toMatch(/"Arn": "arn:aws:sts::222222222222:assumed-role\/account-a-assume-role\//);
    }, 90_000);
  });

  it('no secret reached an output, an argument or a plain file', () => {
    world.capture('prompt calls', recorded());
    expect(world.leaks()).toEqual([]);
  });
});
