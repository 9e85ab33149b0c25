import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSessionTokenCommand, STSClient } from '@aws-sdk/client-sts';
import { startContainerCredentialsStandIn, type ContainerCredentialsStandIn } from '@vault/stand-ins';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, run, vault, VAULT_BIN } from '../support/cli.js';
import { findLeaks, processArguments } from '../support/leaks.js';
import { FILE_PASSPHRASE, World } from '../support/world.js';

const AWS_CLI = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';
const JS_CLIENT = join(REPO, 'test/support/jsClient.mjs');
const BOTOCORE_CLIENT = join(REPO, 'test/support/botocoreClient.py');
const CI_ROLE = 'arn:aws:iam::777777777777:role/ci-deploy';
const TASK_ROLE = 'arn:aws:iam::888888888888:role/from-task';
const ENV_ROLE = 'arn:aws:iam::888888888888:role/from-env';
const ISSUER = 'https://token.actions.githubusercontent.com';
/** Two tokens the CI issuer hands out in turn: the file is rewritten between the two refreshes. */
const FIRST_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJydW4tMSJ9.Zmlyc3Qtc2lnbmF0dXJl';
const ROTATED_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJydW4tMiJ9.cm90YXRlZC1zaWduYXR1cmU';
const PROCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9jZXNzIn0.cHJvY2Vzcy1zaWduYXR1cmU';
const CONTAINER_AUTH = 'container-authorization-token-e2e-0123456789';
const assumed = (roleArn: string) => roleArn.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/');

describe('web identity and credential_source, end to end with the built CLI and real clients', () => {
  let world: World;
  let container: ContainerCredentialsStandIn;
  let envUser: { accessKeyId: string; secretAccessKey: string };
  let taskSessionKeyId = '';
  // Where CI writes its tokens: outside HOME, whose every file the leak scan reads.
  const tokens = mkdtempSync(join(tmpdir(), 'vault-e2e-tokens-'));
  const tokenFile = join(tokens, 'ci-token');

  beforeAll(async () => {
    world = await World.create('file');
    const sts = world.sts;
    sts.addRole({ arn: CI_ROLE, webIdentity: [{ issuer: ISSUER }] });
    sts.addWebIdentityToken({ token: FIRST_TOKEN, issuer: ISSUER, subject: 'repo:org/app:run-1' });
    sts.addWebIdentityToken({ token: ROTATED_TOKEN, issuer: ISSUER, subject: 'repo:org/app:run-2' });
    sts.addWebIdentityToken({ token: PROCESS_TOKEN, issuer: ISSUER, subject: 'repo:org/app:process' });
    sts.addRole({ arn: TASK_ROLE, trustedPrincipals: ['arn:aws:iam::888888888888:user/task-user'] });
    sts.addRole({ arn: ENV_ROLE, trustedPrincipals: ['arn:aws:iam::888888888888:user/env-user'] });
    envUser = sts.addUser({ arn: 'arn:aws:iam::888888888888:user/env-user' });
    // The task's credentials are temporary ones STS issued (as an ECS task role's are), so the
    // AssumeRole they sign is checked against a session the stand-in knows.
    const taskUser = sts.addUser({ arn: 'arn:aws:iam::888888888888:user/task-user' });
    // The SDK's notice about Node 20 is about the test machine, not vault.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    const client = new STSClient({ region: 'eu-west-1', endpoint: sts.url, credentials: taskUser });
    const session = (await client.send(new GetSessionTokenCommand({ DurationSeconds: 3600 }))).Credentials!;
    client.destroy();
    taskSessionKeyId = session.AccessKeyId!;
    container = await startContainerCredentialsStandIn({
      credentials: { accessKeyId: session.AccessKeyId!, secretAccessKey: session.SecretAccessKey!, sessionToken: session.SessionToken!, expiration: session.Expiration! },
      authorizationToken: CONTAINER_AUTH,
    });
    writeFileSync(join(tokens, 'process-token'), `${PROCESS_TOKEN}\n`);
    writeFileSync(join(tokens, 'empty-token'), '');
    writeFileSync(
      join(world.home, '.aws', 'config'),
      `
[profile ci]
role_arn = ${CI_ROLE}
web_identity_token_file = ${tokenFile}
role_session_name = github-run
region = eu-west-1

[profile ci-process]
role_arn = ${CI_ROLE}
web_identity_token_process = cat /proc/$$/environ > ${join(tokens, 'process-environ')} && cat ${join(tokens, 'process-token')}
region = eu-west-1

[profile ci-via-export]
credential_process = ${process.execPath} ${VAULT_BIN} export --format json ci-process

[profile from-ecs]
role_arn = ${TASK_ROLE}
credential_source = EcsContainer
region = eu-west-1

[profile from-env]
role_arn = ${ENV_ROLE}
credential_source = Environment
region = eu-west-1

[profile no-token]
role_arn = ${CI_ROLE}
web_identity_token_file = ${join(tokens, 'missing-token')}

[profile empty-token]
role_arn = ${CI_ROLE}
web_identity_token_file = ${join(tokens, 'empty-token')}

[profile typo-source]
role_arn = ${ENV_ROLE}
credential_source = Ec2Metadata
`,
      { flag: 'a' },
    );
  }, 60_000);

  afterAll(async () => {
    await container?.close();
    if (world) {
      await world.vault(['server', 'stop']);
      await world.close();
    }
    rmSync(tokens, { recursive: true, force: true });
  });

  it('exec through AssumeRoleWithWebIdentity (unsigned), then a refresh re-reads the rotated token file', async () => {
    world.sts.resetCalls();
    // AWS_MIN_TTL above the role's hour: the cached role credentials never suffice, so the second
    // exec refreshes them (as the daemon does ahead of expiry) and must read the file again.
    const refreshEveryTime = { AWS_MIN_TTL: '61m' };
    const ask = ['exec', 'ci', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json'];
    writeFileSync(tokenFile, `${FIRST_TOKEN}\n`);
    const first = await world.vault(ask, refreshEveryTime);
    expect(first.stderr).toBe('');
    expect(JSON.parse(first.stdout).Arn).toBe(`${assumed(CI_ROLE)}/github-run`);
    writeFileSync(tokenFile, `${ROTATED_TOKEN}\n`);
    const second = await world.vault(ask, refreshEveryTime);
    expect(second.code).toBe(0);
    const calls = world.sts.calls.filter((c) => c.action === 'AssumeRoleWithWebIdentity');
    expect(calls.map((c) => ({ signedBy: c.accessKeyId, subject: c.webIdentitySubject, session: c.roleSessionName, ok: c.ok }))).toEqual([
      { signedBy: '', subject: 'repo:org/app:run-1', session: 'github-run', ok: true },
      { signedBy: '', subject: 'repo:org/app:run-2', session: 'github-run', ok: true },
    ]);
  });

  it('the daemon: each exec --server session assumes the role with the token file as it is then; botocore reads it from the container endpoint', async () => {
    world.sts.resetCalls();
    const ask = ['exec', '--server', 'ci', '--', PYTHON, BOTOCORE_CLIENT, world.sts.url];
    writeFileSync(tokenFile, `${FIRST_TOKEN}\n`);
    const first = await world.vault(ask);
    writeFileSync(tokenFile, `${ROTATED_TOKEN}\n`);
    const second = await world.vault(ask);
    await world.captureDaemonEnviron();
    world.capture('process arguments while the daemon runs', processArguments());
    for (const result of [first, second]) {
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout)).toEqual({ arn: `${assumed(CI_ROLE)}/github-run`, method: 'container-role' });
    }
    expect(world.sts.calls.filter((c) => c.action === 'AssumeRoleWithWebIdentity').map((c) => c.webIdentitySubject)).toEqual(['repo:org/app:run-1', 'repo:org/app:run-2']);
  }, 90_000);

  it('without the refresh knob a second exec reuses the cached role credentials: no STS call', async () => {
    world.sts.resetCalls();
    const result = await world.vault(['exec', 'ci', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json']);
    expect(JSON.parse(result.stdout).Arn).toBe(`${assumed(CI_ROLE)}/github-run`);
    expect(world.sts.count('AssumeRoleWithWebIdentity')).toBe(0);
  });

  it("the child's environment carries neither the web identity token nor the container variables", async () => {
    // Not through world.vault: the child's own credentials are in its environment by design, so
    // this output is scanned for the token secrets only, not kept for the world's scan.
    const result = await vault(['exec', 'ci', '--', 'sh', '-c', 'env'], {
      env: world.env({ AWS_CONTAINER_CREDENTIALS_FULL_URI: container.url, AWS_CONTAINER_AUTHORIZATION_TOKEN: CONTAINER_AUTH }),
    });
    expect(result.code).toBe(0);
    expect(findLeaks([FIRST_TOKEN, ROTATED_TOKEN, CONTAINER_AUTH], { 'exec child env': result.stdout })).toEqual([]);
    expect(result.stdout).not.toMatch(/^AWS_CONTAINER_/m);
  });

  it('web_identity_token_process: botocore consumes `vault export --format json` through credential_process', async () => {
    const script = [
      'import botocore.session, sys',
      "s = botocore.session.Session(profile='ci-via-export')",
      "print(s.create_client('sts', endpoint_url=sys.argv[1], region_name='eu-west-1').get_caller_identity()['Arn'])",
    ].join('\n');
    world.sts.resetCalls();
    const result = await run(PYTHON, ['-c', script, world.sts.url], { env: world.env(), timeoutMs: 60_000 });
    world.capture('botocore via credential_process (web_identity_token_process)', result.stdout + result.stderr);
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toMatch(new RegExp(`^${assumed(CI_ROLE)}/vault-\\d+$`));
    expect(world.sts.calls.find((c) => c.action === 'AssumeRoleWithWebIdentity')?.webIdentitySubject).toBe('repo:org/app:process');
    // The token process is one vault starts: its /proc environ holds no passphrase and no key.
    const environ = readFileSync(join(tokens, 'process-environ'), 'utf8').replace(/\0/g, '\n');
    expect(environ).toMatch(/^PATH=/m);
    expect(findLeaks([FILE_PASSPHRASE, world.user.secretAccessKey, envUser.secretAccessKey, ...world.sts.issuedSecrets()], { 'web_identity_token_process environ': environ })).toEqual([]);
  });

  it('credential_source = EcsContainer: the container endpoint stand-in gives the task credentials that assume the role; botocore runs as the role', async () => {
    world.sts.resetCalls();
    const script = [
      'import botocore.session, sys',
      "s = botocore.session.get_session()",
      "print(s.create_client('sts', endpoint_url=sys.argv[1], region_name='eu-west-1').get_caller_identity()['Arn'])",
    ].join('\n');
    const result = await world.vault(['exec', 'from-ecs', '--', PYTHON, '-c', script, world.sts.url], {
      AWS_CONTAINER_CREDENTIALS_FULL_URI: container.url,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: CONTAINER_AUTH,
    });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toMatch(new RegExp(`^${assumed(TASK_ROLE)}/vault-\\d+$`));
    expect(container.requests).toEqual([{ path: '/v2/credentials/task', authorized: true }]);
    expect(world.sts.calls.filter((c) => c.action === 'AssumeRole').map((c) => ({ signedBy: c.accessKeyId, role: c.roleArn, ok: c.ok }))).toEqual([
      { signedBy: taskSessionKeyId, role: TASK_ROLE, ok: true },
    ]);
  });

  it('credential_source = Environment: the environment key assumes the role; the JS SDK consumes the exported credentials', async () => {
    world.sts.resetCalls();
    const result = await world.vault(['exec', 'from-env', '--', process.execPath, JS_CLIENT, 'fromNodeProviderChain', world.sts.url], {
      AWS_ACCESS_KEY_ID: envUser.accessKeyId,
      AWS_SECRET_ACCESS_KEY: envUser.secretAccessKey,
    });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout).arn).toMatch(new RegExp(`^${assumed(ENV_ROLE)}/vault-\\d+$`));
    expect(world.sts.calls.filter((c) => c.action === 'AssumeRole').map((c) => c.accessKeyId)).toEqual([envUser.accessKeyId]);
    expect(world.sts.count('GetSessionToken')).toBe(0);
  });

  it.each([
    ['no-token', `vault: profile no-token: web_identity_token_file TOKENS/missing-token does not exist; check the path, or that whatever writes the token (CI, EKS) has written it`],
    ['empty-token', `vault: profile empty-token: web_identity_token_file TOKENS/empty-token is empty; check that whatever writes the token (CI, EKS) has written it`],
    [
      'typo-source',
      `vault: profile typo-source in HOME/.aws/config: credential_source "Ec2Metadata" is not one of Environment, Ec2InstanceMetadata, EcsContainer; set credential_source = Environment, Ec2InstanceMetadata or EcsContainer (spelt as the AWS CLI spells them)`,
    ],
  ])('bad input (%s): one vault: line naming the profile and the key, exit 1, no STS call', async (profile, line) => {
    world.sts.resetCalls();
    const result = await world.vault(['exec', profile, '--', 'true']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 1, stderr: `${line.replace('HOME', world.home).replace('TOKENS', tokens)}\n` });
    expect(world.sts.calls).toEqual([]);
  });

  it('no secret (keys, session tokens, web identity tokens, the container token) in any output or file under HOME', () => {
    const extra = findLeaks([FIRST_TOKEN, ROTATED_TOKEN, PROCESS_TOKEN, CONTAINER_AUTH, envUser.secretAccessKey], world.captured, [world.home]);
    expect([...world.leaks(), ...extra]).toEqual([]);
  });
});
