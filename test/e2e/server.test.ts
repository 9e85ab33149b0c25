import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, VAULT_BIN, run } from '../support/cli.js';
import { processArguments } from '../support/leaks.js';
import { MFA_SERIAL, ROLE_A, ROLE_B, World } from '../support/world.js';

const AWS_CLI = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';
const JS_CLIENT = join(REPO, 'test/support/jsClient.mjs');
const BOTOCORE_CLIENT = join(REPO, 'test/support/botocoreClient.py');
const assumedArn = (roleArn: string) => new RegExp(`^${roleArn.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/')}/`);

/** What a shell looks like after `eval "$(vault session start …)"`. */
function sessionEnv(world: World, env: Record<string, string>): NodeJS.ProcessEnv {
  const base = world.env();
  delete base.AWS_VAULT_BACKEND;
  delete base.AWS_VAULT_FILE_PASSPHRASE;
  return { ...base, ...env };
}

describe('real AWS clients (AWS CLI, botocore, the JS SDK) get the role from the running daemon', () => {
  let world: World;
  let ecs: { id: string; env: Record<string, string>; token: string };
  let imds: { id: string; env: Record<string, string> };

  beforeAll(async () => {
    world = await World.create('file');
    await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
  });

  afterAll(async () => {
    if (world) {
      await world.vault(['server', 'stop']);
      await world.close();
    }
  });

  it('vault exec --server: the AWS CLI gets the role from the container endpoint; the session ends with the child', async () => {
    world.sts.resetCalls();
    const result = await world.vault(['exec', '--server', 'account-a', '-t', '123456', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(assumedArn(ROLE_A));
    expect(world.sts.count('GetSessionToken')).toBe(1);
    expect(world.sts.count('AssumeRole')).toBe(1);
    const listed = await world.vault(['session', 'ls']);
    expect(listed.stdout).not.toMatch(/account-a/);
  });

  it('vault exec --server --no-session: the session assumes the role with the stored key and the MFA code, no GetSessionToken', async () => {
    world.sts.resetCalls();
    const result = await world.vault(['exec', '--server', '--no-session', 'account-a', '-t', '123456', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(assumedArn(ROLE_A));
    expect(world.sts.count('GetSessionToken')).toBe(0);
    const assumed = world.sts.calls.filter((c) => c.action === 'AssumeRole' && c.ok);
    expect(assumed).toHaveLength(1);
    expect(assumed[0]).toMatchObject({ accessKeyId: world.user.accessKeyId, serialNumber: MFA_SERIAL, tokenCodeSent: true });
  });

  it("vault exec --server hands back the child's exit code and gives it no keys", async () => {
    const result = await world.vault(['exec', '--server', 'account-a', '--', 'sh', '-c', 'test -z "$AWS_ACCESS_KEY_ID" && test -n "$AWS_CONTAINER_CREDENTIALS_FULL_URI" && exit 5']);
    expect(result.code).toBe(5);
  });

  it('vault exec --ec2-server: the AWS CLI gets the role from IMDSv2', async () => {
    const result = await world.vault(['exec', '--ec2-server', 'account-a', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(assumedArn(ROLE_A));
  });

  it('vault session start prints shell lines; --format json gives the same for programs', async () => {
    const shell = await world.vault(['session', 'start', 'account-b']);
    expect(shell.code).toBe(0);
    expect(shell.stdout).toMatch(/^unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN .*AWS_PROFILE/m);
    expect(shell.stdout).toMatch(/^export AWS_CONTAINER_CREDENTIALS_FULL_URI=http:\/\/127\.0\.0\.1:\d+\/creds\/\S+$/m);
    expect(shell.stdout).toMatch(/^export AWS_CONTAINER_AUTHORIZATION_TOKEN=\S+$/m);
    expect(shell.stdout).toMatch(/^export AWS_VAULT=account-b$/m);
    const json = JSON.parse((await world.vault(['session', 'start', '--format', 'json', 'account-b'])).stdout);
    ecs = json;
    expect(json.env.AWS_CONTAINER_AUTHORIZATION_TOKEN).toBe(json.token);
    const im = JSON.parse((await world.vault(['session', 'start', '--imds', '--format', 'json', 'account-a'])).stdout);
    imds = im;
    expect(im.env.AWS_EC2_METADATA_SERVICE_ENDPOINT).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it.each([
    ['container', []],
    ['IMDS', ['--imds']],
  ])('in a shell pointed at a %s session, vault exec runs and its child gets its own keys, not the endpoint', async (_kind, flags) => {
    // What a user types: eval the session's lines, then run another profile's command in that shell.
    // The child prints variable names only (values would be credentials).
    const vault = `'${process.execPath}' '${VAULT_BIN}'`;
    const script = [
      `eval "$(${vault} session start ${flags.join(' ')} account-b)" || exit 90`,
      'echo "shell: AWS_VAULT=$AWS_VAULT"',
      `${vault} exec account-a -- sh -c 'env | cut -d= -f1 | sort; echo "child: AWS_VAULT=$AWS_VAULT"'`,
      `${vault} session stop "$VAULT_SESSION" >/dev/null 2>&1`,
    ].join('\n');
    const result = await run('/bin/sh', ['-c', script], { env: world.env() });
    world.capture(`session shell ${_kind} stdout`, result.stdout);
    world.capture(`session shell ${_kind} stderr`, result.stderr);
    expect(result.stderr).not.toMatch(/^vault: /m);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines).toContain('shell: AWS_VAULT=account-b');
    expect(lines).toContain('child: AWS_VAULT=account-a');
    expect(lines).toEqual(expect.arrayContaining(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']));
    for (const endpoint of ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN', 'AWS_EC2_METADATA_SERVICE_ENDPOINT', 'VAULT_SESSION']) {
      expect(lines, endpoint).not.toContain(endpoint);
    }
  });

  it.each(['fromContainerMetadata', 'fromHttp', 'fromNodeProviderChain'])('the JS SDK %s gets the role from the container endpoint', async (provider) => {
    const result = await run(process.execPath, [JS_CLIENT, provider, world.sts.url], { env: sessionEnv(world, ecs.env), cwd: REPO });
    world.capture(`js ${provider}`, result.stdout + result.stderr);
    expect(result.stderr).toBe('');
    const out = JSON.parse(result.stdout);
    expect(out.arn).toMatch(assumedArn(ROLE_B));
    expect(new Date(out.expiration).getTime() - Date.now()).toBeGreaterThan(15 * 60_000);
  });

  it.each(['fromInstanceMetadata', 'fromNodeProviderChain'])('the JS SDK %s gets the role from IMDSv2', async (provider) => {
    const result = await run(process.execPath, [JS_CLIENT, provider, world.sts.url], { env: sessionEnv(world, imds.env), cwd: REPO });
    world.capture(`js imds ${provider}`, result.stdout + result.stderr);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout).arn).toMatch(assumedArn(ROLE_A));
  });

  it("botocore's container provider gets the role", async () => {
    const result = await run(PYTHON, [BOTOCORE_CLIENT, world.sts.url], { env: sessionEnv(world, ecs.env) });
    world.capture('botocore container', result.stdout + result.stderr);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toMatchObject({ method: 'container-role', arn: expect.stringMatching(assumedArn(ROLE_B)) });
  });

  it("botocore's IMDS provider gets the role", async () => {
    const result = await run(PYTHON, [BOTOCORE_CLIENT, world.sts.url], { env: sessionEnv(world, imds.env) });
    world.capture('botocore imds', result.stdout + result.stderr);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toMatchObject({ method: 'iam-role', arn: expect.stringMatching(assumedArn(ROLE_A)) });
  });

  it('vault export --format json answers from the live session: no STS call', async () => {
    world.sts.resetCalls();
    for (let i = 0; i < 5; i += 1) {
      const out = JSON.parse((await world.vault(['export', '--format', 'json', 'account-b'])).stdout);
      expect(out).toMatchObject({ Version: 1, AccessKeyId: expect.stringMatching(/^ASIA/) });
    }
    expect(world.mintingCalls()).toBe(0);
  });

  it('vault session renew takes a new MFA code (one GetSessionToken) and keeps the URI and token', async () => {
    world.sts.resetCalls();
    const renewed = await world.vault(['session', 'renew', '-t', '123456', ecs.id]);
    expect(renewed.code).toBe(0);
    expect(world.sts.count('GetSessionToken')).toBe(1);
    const result = await run(process.execPath, [JS_CLIENT, 'fromContainerMetadata', world.sts.url], { env: sessionEnv(world, ecs.env), cwd: REPO });
    world.capture('js after renew', result.stdout + result.stderr);
    expect(JSON.parse(result.stdout).arn).toMatch(assumedArn(ROLE_B));
  });

  it('the daemon log is the audit trail: session starts and every credential served, with the client pid', async () => {
    const read = () =>
      readFileSync(join(world.home, '.vault', 'daemon', 'daemon.log'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    // Lines for credentials served are written in batches (at most a second apart).
    let records = read();
    for (let i = 0; i < 30 && !records.some((r) => r.audit === 'credentials-served' && r.session === ecs.id); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      records = read();
    }
    expect(records.filter((r) => r.audit === 'session-start').length).toBeGreaterThanOrEqual(2);
    expect(records.some((r) => r.audit === 'session-renew' && r.session === ecs.id)).toBe(true);
    const served = records.filter((r) => r.audit === 'credentials-served');
    expect(served.length).toBeGreaterThan(5);
    expect(served.some((r) => typeof (r.client as { pid?: number } | undefined)?.pid === 'number')).toBe(true);
  });

  it('vault session ls shows each session; stop by id and --all; server status reports', async () => {
    const listed = await world.vault(['session', 'ls']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/account-b\s+\S+\s+http:\/\/127\.0\.0\.1:\d+\/creds\/\S+\s+\d+m\s+\d+h\d\dm\s+\d+\s+active/);
    expect(listed.stdout).not.toContain(ecs.token);
    expect((await world.vault(['session', 'stop', imds.id])).code).toBe(0);
    const status = await world.vault(['server', 'status']);
    expect(status.stdout).toMatch(/running[\s\S]*sessions: 2/);
    expect((await world.vault(['session', 'stop', '--all'])).code).toBe(0);
    expect((await world.vault(['session', 'ls'])).stdout.trim().split('\n')).toHaveLength(1);
  });

  it('a stopped session refuses its old token', async () => {
    const result = await run(process.execPath, [JS_CLIENT, 'fromContainerMetadata', world.sts.url], { env: sessionEnv(world, ecs.env), cwd: REPO });
    expect(result.code).not.toBe(0);
  });

  it('no secret appears in output, daemon logs, state files, process arguments, or the environment of the daemon or an exec child', async () => {
    // The child prints its own /proc/PID/environ: world.vault captures it for the scan.
    const child = await world.vault(['exec', '--server', 'account-a', '--', 'sh', '-c', "tr '\\000' '\\n' < /proc/$$/environ"]);
    expect(child.code).toBe(0);
    expect(child.stdout).toMatch(/^AWS_CONTAINER_CREDENTIALS_FULL_URI=/m);
    await world.captureDaemonEnviron();
    process.stdout.write('FIGURE envScan processes=2 suite=server\n');
    world.capture('process arguments', processArguments());
    expect(world.leaks()).toEqual([]);
  });
});
