import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../support/cli.js';
import { BACKENDS, ROLE_A, ROLE_B, World } from '../support/world.js';

const AWS_CLI = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';
const assumedArn = (roleArn: string) => roleArn.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/');

describe.each(BACKENDS)('vault on its own, %s backend: add, then exec, export and credential_process take real clients through MFA to the role', (backend) => {
  let world: World;

  beforeAll(async () => {
    world = await World.create(backend);
    // The keychain is shared by every test in this D-Bus session: start from an empty vault.
    await world.vault(['clear']);
    await world.vault(['remove', '-f', 'central-account']);
  });

  afterAll(async () => {
    await world?.close();
  });

  it('vault add --env stores the key; list shows it', async () => {
    const added = await world.vault(['add', '--env', 'central-account'], {
      AWS_ACCESS_KEY_ID: world.user.accessKeyId,
      AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey,
    });
    expect(added.stderr).toMatch(/Added credentials to profile "central-account"/);
    expect(added.code).toBe(0);
    const listed = await world.vault(['list', '--credentials']);
    expect(listed.stdout.split('\n')).toContain('central-account');
  });

  it('vault exec account-a -t CODE runs the AWS CLI as the role (1 GetSessionToken + 1 AssumeRole)', async () => {
    world.sts.resetCalls();
    const result = await world.vault(['exec', 'account-a', '-t', '123456', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(new RegExp(`^${assumedArn(ROLE_A)}/`));
    expect(world.sts.count('GetSessionToken')).toBe(1);
    expect(world.sts.count('AssumeRole')).toBe(1);
  });

  it('a second exec within the session makes no STS call at all and needs no code', async () => {
    world.sts.resetCalls();
    const result = await world.vault(['exec', 'account-a', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(new RegExp(`^${assumedArn(ROLE_A)}/`));
    expect(world.mintingCalls()).toBe(0);
  });

  it('one MFA code serves another role: account-b needs only an AssumeRole', async () => {
    world.sts.resetCalls();
    // account-b sets no region of its own (source_profile lends none, as in the AWS CLI): --region gives one.
    const result = await world.vault(['exec', '--region', 'eu-west-1', 'account-b', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(new RegExp(`^${assumedArn(ROLE_B)}/`));
    expect(world.sts.count('GetSessionToken')).toBe(0);
    expect(world.sts.count('AssumeRole')).toBe(1);
  });

  it("the child's environment: shadowing variables cleared, AWS_VAULT and region set", async () => {
    const result = await world.vault(
      ['exec', 'account-a', '--', 'sh', '-c', 'echo "${AWS_PROFILE-unset} ${AWS_SDK_LOAD_CONFIG-unset} $AWS_VAULT $AWS_REGION $AWS_DEFAULT_REGION ${#AWS_SECRET_ACCESS_KEY} ${AWS_SESSION_TOKEN:+token} $AWS_CREDENTIAL_EXPIRATION"'],
      { AWS_PROFILE: 'other', AWS_SDK_LOAD_CONFIG: '1', AWS_ACCESS_KEY_ID: 'AKIASHADOW0000000000' },
    );
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^unset unset account-a ap-northeast-1 ap-northeast-1 \d+ token \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it("exec hands back the child's exit code, and dies of the child's signal when the child dies of one", async () => {
    expect((await world.vault(['exec', 'account-a', '--', 'sh', '-c', 'exit 7'])).code).toBe(7);
    const killed = await world.vault(['exec', 'account-a', '--', 'sh', '-c', 'kill -TERM $$']);
    expect({ code: killed.code, signal: killed.signal }).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('exec refuses to nest inside another vault exec', async () => {
    const result = await world.vault(['exec', 'account-a', '--', 'true'], { AWS_VAULT: 'account-b' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/already running.*AWS_VAULT=account-b/);
  });

  it('credential_process = vault export --format json drives the AWS CLI to the role', async () => {
    const result = await run(AWS_CLI, ['sts', 'get-caller-identity', '--profile', 'via-process', '--endpoint-url', world.sts.url, '--output', 'json'], {
      env: world.env(),
    });
    world.capture('aws cli via credential_process', result.stdout + result.stderr);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout).Arn).toMatch(new RegExp(`^${assumedArn(ROLE_A)}/`));
  });

  it('credential_process drives botocore to the role', async () => {
    const script = [
      'import botocore.session, sys',
      "s = botocore.session.Session(profile='via-process')",
      "print(s.create_client('sts', endpoint_url=sys.argv[1], region_name='ap-northeast-1').get_caller_identity()['Arn'])",
    ].join('\n');
    const result = await run(PYTHON, ['-c', script, world.sts.url], { env: world.env() });
    world.capture('botocore via credential_process', result.stdout + result.stderr);
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toMatch(new RegExp(`^${assumedArn(ROLE_A)}/`));
  });

  it('export formats: json is credential_process Version 1, env and ini carry the same key', async () => {
    const json = JSON.parse((await world.vault(['export', '--format', 'json', 'account-a'])).stdout);
    expect(json).toMatchObject({ Version: 1, AccessKeyId: expect.stringMatching(/^ASIA/) });
    expect(json.Expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const env = (await world.vault(['export', '--format', 'env', 'account-a'])).stdout;
    expect(env).toContain(`AWS_ACCESS_KEY_ID=${json.AccessKeyId}\n`);
    expect(env).toContain('AWS_REGION=ap-northeast-1\n');
    const exported = (await world.vault(['export', '--format', 'export-env', 'account-a'])).stdout;
    expect(exported).toContain(`export AWS_ACCESS_KEY_ID=${json.AccessKeyId}\n`);
    const ini = (await world.vault(['export', '--format', 'ini', 'account-a'])).stdout;
    expect(ini).toMatch(new RegExp(`^\\[account-a\\]\naws_access_key_id=${json.AccessKeyId}\n`));
  });

  it('list shows the cached credentials with time left', async () => {
    const listed = await world.vault(['list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/central-account\s+central-account\s+sts\.GetSessionToken:\d+h\d\dm/);
    expect(listed.stdout).toMatch(/account-a\s+-\s+sts\.AssumeRole:\d+m/);
  });

  it('a wrong MFA code after clear is one line naming the call, the profile and what to do', async () => {
    expect((await world.vault(['clear'])).code).toBe(0);
    const result = await world.vault(['exec', 'account-a', '-t', '000000', '--', 'true']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^vault: GetSessionToken for profile account-a failed: AccessDenied: .*MFA.*; the MFA code was wrong/);
  });

  it('an MFA code of the wrong shape never reaches STS', async () => {
    world.sts.resetCalls();
    const result = await world.vault(['exec', 'account-a', '-t', '12ab', '--', 'true']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/MFA code from --mfa-token is not 6 digits/);
    expect(world.mintingCalls()).toBe(0);
  });

  it('without a terminal or a code, exec says how to give one', async () => {
    const result = await world.vault(['exec', 'account-a', '--', 'true']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--mfa-token|terminal/);
  });

  it('mfa_process supplies the code', async () => {
    const config = join(world.home, '.aws', 'config-mfa-process');
    writeFileSync(config, readFileSync(join(world.home, '.aws', 'config'), 'utf8').replace('[profile account-a]', '[profile account-a]\nmfa_process = echo 123456'));
    const result = await world.vault(['exec', 'account-a', '--', 'true'], { AWS_CONFIG_FILE: config });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('bad input: an unknown profile, a bad key id, an unknown backend each get one line and a non-zero exit', async () => {
    const unknown = await world.vault(['exec', 'nope', '--', 'true']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/profile nope is not in the AWS config file and has no stored key; store a key with `vault add nope`/);
    const badKey = await world.vault(['add', '--env', 'x'], { AWS_ACCESS_KEY_ID: 'not-a-key', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' });
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toMatch(/access key id is not an AWS access key id/);
    expect(badKey.stderr).not.toContain('not-a-key');
    const badBackend = await world.vault(['list'], { AWS_VAULT_BACKEND: 'kwallet' });
    expect(badBackend.code).not.toBe(0);
    expect(badBackend.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('adding the key again replaces it and drops its sessions', async () => {
    await world.vault(['exec', 'account-a', '-t', '123456', '--', 'true']);
    const second = world.sts.addUser({ arn: 'arn:aws:iam::111111111111:user/central-user' });
    await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: second.accessKeyId, AWS_SECRET_ACCESS_KEY: second.secretAccessKey });
    const sessions = await world.vault(['list', '--sessions']);
    expect(sessions.stdout).toBe('');
    world.sts.resetCalls();
    expect((await world.vault(['exec', 'account-a', '-t', '123456', '--', 'true'])).code).toBe(0);
    expect(world.sts.calls.find((c) => c.action === 'GetSessionToken')?.accessKeyId).toBe(second.accessKeyId);
  });

  if (backend === 'file') {
    it('the file backend keeps items 0600 in a 0700 directory', () => {
      const dir = join(world.home, '.awsvault', 'keys');
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      const files = readdirSync(dir);
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    });
  }

  it('no secret appears in any output, log or file outside the keyring', () => {
    expect(world.leaks()).toEqual([]);
  });
});
