import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStsStandIn } from '@vault/stand-ins';
import { run, runOk } from './proc.mjs';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const VAULT_BIN = join(REPO, 'packages/cli/bundle/bin.js');
export const AWS_CLI = '/usr/bin/aws';

export const MFA_SERIAL = 'arn:aws:iam::111111111111:mfa/central-user';
export const ROLE_A = 'arn:aws:iam::222222222222:role/account-a-assume-role';
const MFA_CODE = '123456';

/** The README's Configuration example, the AWS CLI user's equivalent, and fresh roles for cold-burst rounds. */
function config(burstRoles) {
  const bursts = burstRoles
    .map((arn, i) => `[profile burst-${i}]\ninclude_profile = central-account\nrole_arn = ${arn}\n`)
    .join('\n');
  return `[profile central-account]
region = ap-northeast-1
mfa_serial = ${MFA_SERIAL}

[profile account-a]
include_profile = central-account
role_arn = ${ROLE_A}

# What an AWS CLI user has instead: the same role over the same MFA device, the key in plain text.
[profile cli-central]
region = ap-northeast-1

[profile cli-account-a]
source_profile = cli-central
role_arn = ${ROLE_A}
mfa_serial = ${MFA_SERIAL}
region = ap-northeast-1

${bursts}`;
}

/**
 * One user's machine for the benchmarks: a throwaway HOME, the project's STS stand-in (in this
 * process, so it can count calls), a key stored in each backend, and a daemon per backend when
 * asked for. Every process the benches time is a separate process started from here.
 */
export class Machine {
  static async create({ burstRounds = 0 } = {}) {
    const sts = await startStsStandIn();
    const user = sts.addUser({ arn: 'arn:aws:iam::111111111111:user/central-user' });
    sts.addMfaDevice(MFA_SERIAL, MFA_CODE);
    sts.addRole({ arn: ROLE_A, requireMfa: true });
    const burstRoles = Array.from({ length: burstRounds }, (_, i) => `arn:aws:iam::444444444444:role/burst-${i}`);
    for (const arn of burstRoles) sts.addRole({ arn, requireMfa: true });
    const home = mkdtempSync(join(tmpdir(), 'vault-bench-'));
    mkdirSync(join(home, '.aws'), { mode: 0o700 });
    writeFileSync(join(home, '.aws', 'config'), config(burstRoles));
    writeFileSync(
      join(home, '.aws', 'credentials'),
      `[cli-central]\naws_access_key_id = ${user.accessKeyId}\naws_secret_access_key = ${user.secretAccessKey}\n`,
      { mode: 0o600 },
    );
    return new Machine(sts, user, home);
  }

  constructor(sts, user, home) {
    this.sts = sts;
    this.user = user;
    this.home = home;
    this.keychain = process.env.VAULT_TEST_KEYCHAIN === '1';
    /** The live account-a session in each backend's daemon, by backend. */
    this.sessions = {};
  }

  /** A daemon state directory under the bench HOME, made 0700 (vault refuses a missing one). */
  stateDir(name) {
    const dir = join(this.home, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** A user's shell for one backend; each backend has its own daemon state directory. */
  env(backend, extra = {}) {
    const env = {
      PATH: process.env.PATH,
      HOME: this.home,
      AWS_ENDPOINT_URL_STS: this.sts.url,
      AWS_VAULT_BACKEND: backend,
      VAULT_STATE_DIR: this.stateDir(`.vault-${backend}`),
      DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
      XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      SHELL: '/bin/sh',
    };
    if (backend === 'file') env.AWS_VAULT_FILE_PASSPHRASE = 'bench-file-passphrase';
    return { ...env, ...extra };
  }

  vaultArgs(args) {
    return [VAULT_BIN, ...args];
  }

  vault(backend, args, extra) {
    return runOk(process.execPath, this.vaultArgs(args), { env: this.env(backend, extra) });
  }

  /** Stores the key and leaves a cached MFA session and role session, as a morning's first exec does. */
  async prime(backend) {
    await this.vault(backend, ['add', '--env', 'central-account'], {
      AWS_ACCESS_KEY_ID: this.user.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.user.secretAccessKey,
    });
    await this.vault(backend, ['exec', '-t', MFA_CODE, 'account-a', '--', 'true']);
    // The backend's daemon, with a live session for account-a (the "daemon running" rows).
    this.sessions[backend] = await this.startSession(backend);
  }

  /** `vault session start --format json [extra] PROFILE` in the backend's daemon. */
  async startSession(backend, extra = [], profile = 'account-a') {
    const { stdout } = await this.vault(backend, ['session', 'start', '--format', 'json', ...extra, profile]);
    return JSON.parse(stdout);
  }

  /** The pid of the backend's daemon (from its state file). */
  daemonPid(backend) {
    return JSON.parse(readFileSync(join(this.env(backend).VAULT_STATE_DIR, 'daemon.json'), 'utf8')).pid;
  }

  /**
   * The AWS CLI's own warm cache for cli-account-a, written where and how botocore looks for it
   * (~/.aws/cli/cache/<sha1 of the AssumeRole arguments>.json), filled with credentials the
   * stand-in issued: `aws configure export-credentials` then answers without calling STS, as it
   * does for a user all day after the first MFA prompt.
   */
  async primeAwsCli(backend) {
    const { stdout } = await this.vault(backend, ['export', '--format', 'json', 'account-a']);
    const creds = JSON.parse(stdout);
    // botocore: json.dumps(args, sort_keys=True) of the AssumeRole kwargs minus the generated session name.
    const key = createHash('sha1').update(`{"RoleArn": "${ROLE_A}", "SerialNumber": "${MFA_SERIAL}"}`).digest('hex');
    const dir = join(this.home, '.aws', 'cli', 'cache');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(dir, `${key}.json`),
      JSON.stringify({
        Credentials: { AccessKeyId: creds.AccessKeyId, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken, Expiration: creds.Expiration },
        AssumedRoleUser: { AssumedRoleId: 'AROAEXAMPLE:botocore-session', Arn: `${ROLE_A.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/')}/botocore-session` },
      }),
      { mode: 0o600 },
    );
    const check = await run(AWS_CLI, ['configure', 'export-credentials', '--profile', 'cli-account-a'], { env: this.awsCliEnv() });
    if (check.code !== 0 || JSON.parse(check.stdout).AccessKeyId !== creds.AccessKeyId) {
      throw new Error(`the AWS CLI did not answer from its cache: ${check.stderr.trim()}`);
    }
  }

  awsCliEnv() {
    return { PATH: process.env.PATH, HOME: this.home, AWS_PAGER: '' };
  }

  /** STS calls that mint credentials (clients' GetCallerIdentity calls are not ours). */
  mintingCalls() {
    return this.sts.count('GetSessionToken') + this.sts.count('AssumeRole');
  }

  async close() {
    for (const backend of ['file', 'keychain']) {
      await run(process.execPath, this.vaultArgs(['server', 'stop']), { env: this.env(backend) }).catch(() => {});
    }
    await this.sts.close();
    rmSync(this.home, { recursive: true, force: true });
  }
}
