import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readmeConfig, World } from '../support/world.js';

/** `vault add` adds `[profile X]` when the config has none (aws-vault's --add-config), byte for byte. */
describe('vault add and the config file', () => {
  let world: World;
  let configPath: string;
  const keyEnv = () => ({ AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });

  beforeAll(async () => {
    world = await World.create('file');
    configPath = join(world.home, '.aws', 'config');
  });
  afterAll(async () => {
    await world?.close();
  });

  it('appends [profile X] and keeps every other byte (comments, spacing, a last line without newline)', async () => {
    const before = `${readmeConfig()}\n# my own notes ; keep them\n[sso-session corp]\nsso_region = eu-west-1\n   \n[profile tail]\nregion = us-east-2`;
    writeFileSync(configPath, before);
    const added = await world.vault(['add', '--env', 'newbie'], keyEnv());
    expect(added.code).toBe(0);
    expect(added.stderr).toBe(`Added credentials to profile "newbie" in vault (file backend)\nAdded [profile newbie] to ${configPath}\n`);
    expect(readFileSync(configPath, 'utf8')).toBe(`${before}\n\n[profile newbie]\n`);
  });

  it('writes nothing when the profile is there already, or with --no-add-config', async () => {
    const before = readFileSync(configPath);
    expect((await world.vault(['add', '--env', 'central-account'], keyEnv())).code).toBe(0);
    const skipped = await world.vault(['add', '--env', '--no-add-config', 'other'], keyEnv());
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toMatch(/note: profile "other" is not in .*; add \[profile other\] to set its region and MFA device/);
    expect(readFileSync(configPath).equals(before)).toBe(true);
  });

  it('the AWS CLI and vault both see the added profile', async () => {
    const listed = await world.vault(['list', '--profiles']);
    expect(listed.stdout.split('\n')).toContain('newbie');
  });

  it('no secret reached an output or a plain file', () => {
    expect(world.leaks()).toEqual([]);
  });
});
