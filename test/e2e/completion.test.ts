import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, run } from '../support/cli.js';
import { World } from '../support/world.js';

let world: World;
let bin: string;
let sessionId: string;

/**
 * Loads `vault completion bash` in a real bash, sets COMP_WORDS/COMP_CWORD as bash's own
 * completion does for `vault WORDS…` with the cursor on the last word, calls the completion
 * function and reads COMPREPLY back. `vault` is found on PATH, as an installed one is.
 */
async function complete(...words: string[]): Promise<string[]> {
  const script = [
    'source <(vault completion bash)',
    'COMP_WORDS=(vault "$@")',
    'COMP_CWORD=$#',
    '_vault_complete',
    "printf '%s\\n' \"${COMPREPLY[@]}\"",
  ].join('\n');
  const result = await run('/bin/bash', ['-c', script, 'bash', ...words], {
    env: world.env({ PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin` }),
  });
  world.capture(`complete ${words.join(' ')}`, result.stdout + result.stderr);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.split('\n').filter((line) => line !== '');
}

describe('vault completion bash, loaded in a real bash', () => {
  beforeAll(async () => {
    world = await World.create('file');
    bin = mkdtempSync(join(tmpdir(), 'vault-completion-bin-'));
    symlinkSync(join(REPO, 'packages/cli/bin/vault.js'), join(bin, 'vault'));
    await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
    const session = await world.vault(['session', 'start', '--format', 'json', '-t', '123456', 'account-a']);
    expect(session.code, session.stderr).toBe(0);
    sessionId = (JSON.parse(session.stdout) as { id: string }).id;
  }, 120_000);

  afterAll(async () => {
    await world?.vault(['server', 'stop']);
    await world?.close();
    if (bin) rmSync(bin, { recursive: true, force: true });
  });

  it('completes command names from commander, the hidden __complete left out', async () => {
    // Every command main.ts registers (others are added over time: these must be among them), sorted, no hidden one.
    const all = await complete('');
    expect(all).toEqual(expect.arrayContaining(['add', 'clear', 'completion', 'doctor', 'exec', 'export', 'list', 'remove', 'server', 'session']));
    expect(all).toEqual([...all].sort());
    expect(all).not.toContain('__complete');
    expect(all).not.toContain('help');
    expect(await complete('ex')).toEqual(['exec', 'export']);
  }, 30_000);

  it("completes a command's flags and the global ones", async () => {
    expect(await complete('exec', '--se')).toEqual(['--server']);
    expect(await complete('exec', '--s')).toEqual(['--server', '--stdout']);
    expect(await complete('export', '--b')).toEqual(['--backend']);
    expect(await complete('exec', '--d')).toEqual(['--debug', '--duration']);
  }, 30_000);

  it("completes a flag's choices", async () => {
    expect(await complete('export', 'account-a', '--format', '')).toEqual(['env', 'export-env', 'ini', 'json']);
  }, 30_000);

  it('completes profile names from the config file for vault exec', async () => {
    expect(await complete('exec', '')).toEqual(['account-a', 'account-b', 'central-account', 'via-process']);
    expect(await complete('exec', 'acc')).toEqual(['account-a', 'account-b']);
    expect(await complete('session', 'start', 'v')).toEqual(['via-process']);
  }, 30_000);

  it('completes session subcommands, and session ids from the running daemon for stop and renew', async () => {
    expect(await complete('session', '')).toEqual(['ls', 'renew', 'start', 'stop']);
    expect(await complete('session', 'renew', '')).toEqual([sessionId]);
    expect(await complete('session', 'stop', '')).toEqual([sessionId, 'account-a', 'account-b', 'central-account', 'via-process'].sort());
  }, 30_000);

  it("offers nothing after `--`, so bash completes the command's own words (files)", async () => {
    expect(await complete('exec', 'account-a', '--', '')).toEqual([]);
  }, 30_000);

  it('an unknown shell is one vault: line naming the shells there are', async () => {
    const result = await world.vault(['completion', 'tcsh']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('vault: no completion for the shell "tcsh"; use one of bash, zsh, fish, e.g. source <(vault completion bash)\n');
  }, 30_000);

  it('no secret reached an output, a file under HOME or an argument', () => {
    expect(world.leaks()).toEqual([]);
  });
});
