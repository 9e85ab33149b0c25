import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, vault, VAULT_BIN } from '../support/cli.js';
import { World } from '../support/world.js';

const AWS_CLI = '/usr/bin/aws';
const ROLE_OPEN = 'arn:aws:iam::444444444444:role/open-role';
const USER_ARN = 'arn:aws:iam::111111111111:user/central-user';

/** The aws-vault command lines people already have in scripts and ~/.aws/config, with `vault` in them. */
describe('commands aws-vault users already type', () => {
  let world: World;

  beforeAll(async () => {
    world = await World.create('file');
    world.sts.addRole({ arn: ROLE_OPEN });
    appendFileSync(
      join(world.home, '.aws', 'config'),
      `\n[profile plain]\nregion = eu-west-1\n\n[profile open]\nsource_profile = plain\nrole_arn = ${ROLE_OPEN}\nregion = eu-west-1\n\n` +
        `[profile via-exec-json]\nregion = eu-west-1\ncredential_process = ${process.execPath} ${VAULT_BIN} exec open --json\n`,
    );
    const added = await world.vault(['add', '--env', 'plain'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
    expect(added.code).toBe(0);
  });
  afterAll(async () => {
    await world?.close();
  });

  it('credential_process = vault exec PROFILE --json: the AWS CLI runs as the role', async () => {
    const result = await run(AWS_CLI, ['sts', 'get-caller-identity', '--profile', 'via-exec-json', '--endpoint-url', world.sts.url, '--output', 'json'], { env: world.env(), timeoutMs: 60_000 });
    world.capture('aws cli stderr', result.stderr);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(/^arn:aws:sts::444444444444:assumed-role\/open-role\//);
  });

  it('vault exec PROFILE --json prints exactly what export --format json prints', async () => {
    // stdout is the credential_process delivery (as for export); its stderr is scanned.
    const viaExec = await vault(['exec', 'open', '--json'], { env: world.env() });
    world.capture('exec --json stderr', viaExec.stderr);
    const viaExport = await world.vault(['export', '--format', 'json', 'open']);
    expect(viaExec.code).toBe(0);
    const exec = JSON.parse(viaExec.stdout) as Record<string, unknown>;
    expect(Object.keys(exec)).toEqual(Object.keys(JSON.parse(viaExport.stdout) as object));
    expect(exec).toMatchObject({ Version: 1, AccessKeyId: expect.stringMatching(/^ASIA/) });
  });

  it('exec --json with a command, or with --server, is refused with one line', async () => {
    const withCommand = await world.vault(['exec', 'open', '--json', '--', 'true']);
    expect(withCommand.code).toBe(2);
    expect(withCommand.stderr).toBe('vault: --json prints credentials and runs no command; drop the command, or drop --json to run it with credentials\n');
    const withServer = await world.vault(['exec', '--server', 'open', '--json']);
    expect(withServer.code).toBe(2);
    expect(withServer.stderr).toMatch(/^vault: --json cannot be used with --server[^\n]*\n$/);
  });

  it('vault exec -- COMMAND takes the profile from AWS_PROFILE, and hides AWS_PROFILE from the command', async () => {
    const result = await world.vault(['exec', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json'], { AWS_PROFILE: 'open' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(/^arn:aws:sts::444444444444:assumed-role\/open-role\//);
    const shown = await world.vault(['exec', '--', '/bin/sh', '-c', 'echo "profile=${AWS_PROFILE-unset} vault=$AWS_VAULT"'], { AWS_PROFILE: 'plain' });
    expect(shown.stdout).toBe('profile=unset vault=plain\n');
  });

  it('a named profile wins over AWS_PROFILE, and `vault exec` alone runs $SHELL for AWS_PROFILE', async () => {
    const named = await world.vault(['exec', 'plain', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json'], { AWS_PROFILE: 'open' });
    expect(named.code).toBe(0);
    expect(JSON.parse(named.stdout).Arn).toBe(USER_ARN);
    const shell = await world.vault(['exec'], { AWS_PROFILE: 'plain', SHELL: '/bin/sh' }, 'echo "in=$AWS_VAULT"\n');
    expect(shell.stdout).toBe('in=plain\n');
  });

  it('vault export takes the profile from AWS_PROFILE', async () => {
    const result = await world.vault(['export', '--format', 'json'], { AWS_PROFILE: 'open' });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ Version: 1, AccessKeyId: expect.stringMatching(/^ASIA/) });
  });

  it('no profile and no AWS_PROFILE: one vault: line saying both ways, exit 2', async () => {
    for (const args of [['exec', '--', 'true'], ['export']]) {
      const result = await world.vault(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`vault: vault ${args[0]} needs a profile; name it (\`vault ${args[0]} PROFILE\`) or set AWS_PROFILE\n`);
    }
  });

  it('no secret reached an output or a plain file', () => {
    world.capture('config', readFileSync(join(world.home, '.aws', 'config'), 'utf8'));
    expect(world.leaks()).toEqual([]);
  });
});
