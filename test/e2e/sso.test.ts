import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSsoOidcStandIn, startSsoPortalStandIn, type SsoOidcStandIn, type SsoPortalStandIn } from '@vault/stand-ins';
import { REPO, VAULT_BIN, type RunResult } from '../support/cli.js';
import { findLeaks, environOf, cmdlineOf } from '../support/leaks.js';
import { World } from '../support/world.js';

/**
 * IAM Identity Center end to end: the built CLI signs in through the OIDC stand-in's device flow
 * (the test plays the person: it reads the code on stderr and approves it), gets role credentials
 * from the portal stand-in, and real clients (the AWS CLI, botocore, the JS SDK) use them.
 */
const AWS_CLI = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';
const START_URL = 'https://my-org.awsapps.com/start';
const DEPLOY_ROLE = 'arn:aws:iam::444444444444:role/deploy';
const SSO_CONFIG = `
[sso-session my-sso]
sso_start_url = ${START_URL}
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile dev]
sso_session = my-sso
sso_account_id = 111111111111
sso_role_name = Developer
region = eu-west-1

[profile ops]
sso_session = my-sso
sso_account_id = 222222222222
sso_role_name = Operator
region = eu-west-1

[profile deploy]
source_profile = dev
role_arn = ${DEPLOY_ROLE}
region = eu-west-1

[profile typo-session]
sso_session = my-ssso
sso_account_id = 111111111111
sso_role_name = Developer

[profile plain-http]
sso_start_url = http://my-org.awsapps.com/start
sso_region = eu-west-1
sso_account_id = 111111111111
sso_role_name = Developer

[profile short-account]
sso_session = my-sso
sso_account_id = 11111111111
sso_role_name = Developer
`;

let world: World;
let oidc: SsoOidcStandIn;
let portal: SsoPortalStandIn;
let browserLog: string;
const pids: number[] = [];

async function setUp(options: { deviceCodeSeconds?: number } = {}): Promise<void> {
  world = await World.create('file');
  oidc = await startSsoOidcStandIn({ intervalSeconds: 1, ...options });
  portal = await startSsoPortalStandIn({ oidc, sts: world.sts });
  portal.addAssignment('111111111111', 'Developer');
  portal.addAssignment('222222222222', 'Operator');
  world.sts.addRole({ arn: DEPLOY_ROLE });
  appendFileSync(join(world.home, '.aws', 'config'), SSO_CONFIG);
  // The "browser": xdg-open's $BROWSER, which records the URL it was sent to.
  browserLog = join(world.home, 'browser.log');
  const browser = join(world.home, 'browser.sh');
  writeFileSync(browser, `#!/bin/sh\necho "$@" >> ${browserLog}\n`, { mode: 0o700 });
  ssoEnv = { AWS_ENDPOINT_URL_SSO_OIDC: oidc.url, AWS_ENDPOINT_URL_SSO: portal.url, BROWSER: browser };
}
let ssoEnv: NodeJS.ProcessEnv = {};

afterEach(async () => {
  await portal?.close();
  await oidc?.close();
  await world?.close();
  pids.length = 0;
});

/**
 * Runs the built CLI as a person at a terminal would: when a sign-in code appears on stderr (and
 * `approve` is true) it is approved at the OIDC stand-in, as the person does in the browser. The
 * process's arguments and environment are captured while it runs, for the leak scan.
 */
function vaultSignedIn(args: string[], options: { approve?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  const label = `vault ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VAULT_BIN, ...args], { env: world.env(ssoEnv), stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) pids.push(child.pid);
    const out: Buffer[] = [];
    let err = '';
    let approved = false;
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString('utf8');
      const code = /check the code ([A-Z]{4}-[A-Z]{4})/.exec(err)?.[1];
      if (code && !approved && options.approve !== false) {
        approved = true;
        world.capture(`${label} cmdline`, cmdlineOf(child.pid));
        world.capture(`${label} environ`, environOf(child.pid));
        oidc.approve(code);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      if (args[0] !== 'export') world.capture(`${label} stdout`, stdout);
      world.capture(`${label} stderr`, err);
      resolve({ code, signal, stdout, stderr: err });
    });
  });
}

function leaks(): string[] {
  return findLeaks([...oidc.issuedSecrets(), ...world.sts.issuedSecrets()], world.captured, [world.home]);
}

describe('IAM Identity Center (SSO) end to end', () => {
  beforeEach(async () => setUp());

  it('signs in once, then execs into two accounts\' roles under the start URL and a role chained on top, for real clients', async () => {
    const first = await vaultSignedIn(['exec', 'dev', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json']);
    expect(first.stderr).toContain(`Sign in to IAM Identity Center (${START_URL}) for profile dev:`);
    const prompted = oidc.authorizations()[0]!;
    expect(first.stderr).toContain(`opening ${oidc.url}/device?user_code=${prompted.userCode}`);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).Arn).toMatch(/^arn:aws:sts::111111111111:assumed-role\/AWSReservedSSO_Developer_[0-9a-f]+\/jane\.doe$/);
    expect(readFileSync(browserLog, 'utf8').trim()).toBe(`${oidc.url}/device?user_code=${prompted.userCode}`);

    // Another account under the same start URL: no second sign-in (botocore reads the environment).
    const second = await vaultSignedIn(['exec', 'ops', '--', PYTHON, join(REPO, 'test/support/botocoreClient.py'), world.sts.url], { approve: false });
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).arn).toMatch(/^arn:aws:sts::222222222222:assumed-role\/AWSReservedSSO_Operator_/);
    expect(second.stderr).not.toContain('Sign in');

    // A role on top of the SSO profile, through `export --format json` as the JS SDK's credential_process.
    const exported = await vaultSignedIn(['export', 'deploy', '--format', 'json'], { approve: false });
    expect(exported.code, exported.stderr).toBe(0);
    appendFileSync(join(world.home, '.aws', 'config'), `\n[profile via-process]\ncredential_process = ${process.execPath} ${VAULT_BIN} export --format json deploy\n`);
    const js = await new Promise<RunResult>((resolve) => {
      const child = spawn(process.execPath, [join(REPO, 'test/support/jsClient.mjs'), 'fromNodeProviderChain', world.sts.url], {
        env: { ...world.env(ssoEnv), AWS_PROFILE: 'via-process', AWS_REGION: 'eu-west-1' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    world.capture('js client stdout', js.stdout);
    world.capture('js client stderr', js.stderr);
    expect(js.code, js.stderr).toBe(0);
    expect(JSON.parse(js.stdout).arn).toMatch(/^arn:aws:sts::444444444444:assumed-role\/deploy\//);

    expect(oidc.count('StartDeviceAuthorization')).toBe(1);
    expect(oidc.count('CreateToken', 'urn:ietf:params:oauth:grant-type:device_code')).toBe(1);
    expect(portal.count()).toBe(2); // dev (cached for deploy's AssumeRole), ops

    const listed = await world.vault(['list']);
    expect(listed.stdout).toMatch(new RegExp(`^dev\\s+-\\s+sso\\.GetRoleCredentials:\\d+m, oidc:${START_URL.replace(/[./]/g, '\\$&')}$`, 'm'));
    expect((await world.vault(['list', '--sessions'])).stdout).toContain(`oidc:${START_URL}\n`);
    expect((await world.vault(['list', '--credentials'])).stdout).toBe('');

    const cleared = await world.vault(['clear']);
    expect(cleared.stderr).toBe('Cleared 3 cached credentials and 1 IAM Identity Center sign-in.\n');
    expect((await world.vault(['list', '--sessions'])).stdout).toBe('');

    expect(leaks()).toEqual([]);
  }, 120_000);

  it('session start signs in in the CLI; the daemon serves the SSO role to the AWS CLI without a prompt', async () => {
    const started = await vaultSignedIn(['session', 'start', '--stdout', '--format', 'json', 'dev']);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stderr).toContain(`Sign in to IAM Identity Center (${START_URL}) for profile dev:`);
    const session = JSON.parse(started.stdout) as { id: string; env: Record<string, string> };
    try {
      const child = await new Promise<RunResult>((resolve) => {
        const aws = spawn(AWS_CLI, ['sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json'], {
          env: { PATH: process.env.PATH, HOME: world.home, ...session.env },
        });
        let stdout = '';
        let stderr = '';
        aws.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        aws.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        aws.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
      });
      world.capture('aws via the session stderr', child.stderr);
      expect(child.code, child.stderr).toBe(0);
      expect(JSON.parse(child.stdout).Arn).toMatch(/^arn:aws:sts::111111111111:assumed-role\/AWSReservedSSO_Developer_/);
      expect(oidc.count('StartDeviceAuthorization')).toBe(1);
      const listed = await world.vault(['session', 'ls']);
      expect(listed.stdout).toMatch(new RegExp(`^dev\\s+${session.id}\\s.*\\sactive$`, 'm'));
      await world.captureDaemonEnviron();
    } finally {
      await world.vault(['server', 'stop']);
    }
    expect(existsSync(browserLog)).toBe(false);
    expect(leaks()).toEqual([]);
  }, 90_000);

  it('--stdout prints the URL and code and opens no browser', async () => {
    const result = await vaultSignedIn(['exec', '--stdout', 'dev', '--', '/bin/true']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`^open ${oidc.url.replace(/[./]/g, '\\$&')}/device\\?user_code=[A-Z]{4}-[A-Z]{4}$`, 'm'));
    expect(existsSync(browserLog)).toBe(false);
    expect(leaks()).toEqual([]);
  }, 60_000);

  it('refuses broken SSO settings with one vault: line naming the profile and the key, before any network call', async () => {
    const cases: Array<[string, RegExp]> = [
      ['typo-session', /^vault: profile typo-session in \S+: sso_session "my-ssso" names no \[sso-session my-ssso\] section in \S+; add \[sso-session my-ssso\]/],
      ['plain-http', /^vault: profile plain-http in \S+: sso_start_url "http:\/\/my-org\.awsapps\.com\/start" is not an https URL; /],
      ['short-account', /^vault: profile short-account in \S+: sso_account_id "11111111111" is not twelve digits; /],
    ];
    for (const [profile, line] of cases) {
      const result = await vaultSignedIn(['exec', profile, '--', '/bin/true']);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(line);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(oidc.calls).toEqual([]);
    expect(portal.calls).toEqual([]);
  }, 60_000);
});

describe('IAM Identity Center sign-in nobody approves', () => {
  beforeEach(async () => setUp({ deviceCodeSeconds: 3 }));

  it('ends with a clear line when the code expires', async () => {
    const result = await vaultSignedIn(['exec', '--stdout', 'dev', '--', '/bin/true'], { approve: false });
    expect(result.code).toBe(1);
    const code = oidc.authorizations()[0]!.userCode;
    expect(result.stderr.trim().split('\n').at(-1)).toBe(
      `vault: the sign-in code ${code} for ${START_URL} expired before it was approved (profile dev); run the command again and approve the code in the browser within 3s`,
    );
    expect((await world.vault(['list', '--sessions'])).stdout).toBe('');
    expect(leaks()).toEqual([]);
  }, 60_000);
});
