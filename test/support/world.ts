import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStsStandIn, type StsStandIn } from '@vault/stand-ins';
import { VAULT_BIN, vault, type RunResult } from './cli.js';
import { environOf, findLeaks } from './leaks.js';

export const MFA_SERIAL = 'arn:aws:iam::111111111111:mfa/central-user';
export const ROLE_A = 'arn:aws:iam::222222222222:role/account-a-assume-role';
export const ROLE_B = 'arn:aws:iam::333333333333:role/account-b-role';

/** The README's example setup (central user, MFA device, two roles), plus a profile that reaches account-a through `credential_process`. */
export function readmeConfig(): string {
  return `[profile central-account]
region = ap-northeast-1
mfa_serial = ${MFA_SERIAL}

[profile account-a]
include_profile = central-account          ; aws-vault style
role_arn = ${ROLE_A}

[profile account-b]
source_profile = central-account           ; AWS CLI style
role_arn = ${ROLE_B}
mfa_serial = ${MFA_SERIAL}
duration_seconds = 3600
external_id = optional-external-id

[profile via-process]
region = ap-northeast-1
credential_process = ${process.execPath} ${VAULT_BIN} export --format json account-a
`;
}

export type Backend = 'file' | 'keychain';

/** The file backend's passphrase, in the vault CLI's environment as a user's shell would hand it over. */
export const FILE_PASSPHRASE = 'e2e-file-passphrase';

/**
 * One user's machine: a throwaway HOME with ~/.aws/config, an STS stand-in with the central user,
 * its MFA device and two MFA-protected roles, and every output captured for the leak scan.
 */
export class World {
  readonly home: string;
  readonly captured: Record<string, string> = {};
  private runs = 0;
  user = { accessKeyId: '', secretAccessKey: '' };

  private constructor(
    readonly backend: Backend,
    readonly sts: StsStandIn,
  ) {
    this.home = mkdtempSync(join(tmpdir(), `vault-e2e-${backend}-`));
    mkdirSync(join(this.home, '.aws'), { mode: 0o700 });
    writeFileSync(join(this.home, '.aws', 'config'), readmeConfig());
  }

  static async create(backend: Backend): Promise<World> {
    const sts = await startStsStandIn();
    const world = new World(backend, sts);
    world.user = sts.addUser({ arn: 'arn:aws:iam::111111111111:user/central-user' });
    sts.addMfaDevice(MFA_SERIAL, '123456');
    sts.addRole({ arn: ROLE_A, requireMfa: true });
    sts.addRole({ arn: ROLE_B, requireMfa: true });
    return world;
  }

  /** The environment a user's shell would have: nothing from the test runner's AWS settings. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const base: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: this.home,
      AWS_ENDPOINT_URL_STS: this.sts.url,
      AWS_VAULT_BACKEND: this.backend,
      // gnome-keyring's session (set by scripts/with-keyring.sh) for the keychain backend.
      DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
      XDG_DATA_HOME: process.env.XDG_DATA_HOME,
      // Not the runner's XDG_RUNTIME_DIR: the daemon keeps its socket there, and every World (and
      // the developer's own daemon) would share one. Without it, each World's daemon lives in its
      // HOME (~/.vault/daemon); tests of XDG_RUNTIME_DIR pass one of their own.
      SHELL: '/bin/sh',
    };
    if (this.backend === 'file') base.AWS_VAULT_FILE_PASSPHRASE = FILE_PASSPHRASE;
    return { ...base, ...extra };
  }

  async vault(args: string[], extra: NodeJS.ProcessEnv = {}, input?: string): Promise<RunResult> {
    const result = await vault(args, { env: this.env(extra), input });
    this.runs += 1;
    // `vault export` exists to print credentials on stdout (credential_process reads them there);
    // that one channel is the delivery, not a leak. Its stderr is scanned like everything else.
    if (args[0] !== 'export') this.captured[`run ${this.runs} (vault ${args.join(' ')}) stdout`] = result.stdout;
    this.captured[`run ${this.runs} (vault ${args.join(' ')}) stderr`] = result.stderr;
    return result;
  }

  capture(name: string, text: string): void {
    this.captured[name] = text;
  }

  /**
   * The running daemon's `/proc/PID/environ` (pid from `vault server status`), captured for the
   * leak scan under `name`: the daemon is a process vault starts, so it must hold no secret there.
   */
  async captureDaemonEnviron(name = 'daemon environ'): Promise<number> {
    const status = await this.vault(['server', 'status']);
    const pid = Number.parseInt(/^pid: (\d+)$/m.exec(status.stdout)?.[1] ?? '', 10);
    if (!Number.isInteger(pid)) throw new Error(`no daemon pid in \`vault server status\`: ${status.stdout}${status.stderr}`);
    const environ = environOf(pid);
    if (environ === '') throw new Error(`could not read /proc/${pid}/environ`);
    this.capture(`${name} (pid ${pid})`, environ);
    return pid;
  }

  /** STS calls that mint credentials (the clients' own GetCallerIdentity calls are not ours). */
  mintingCalls(): number {
    return this.sts.count('GetSessionToken') + this.sts.count('AssumeRole');
  }

  leaks(): string[] {
    return findLeaks([this.user.secretAccessKey, FILE_PASSPHRASE, ...this.sts.issuedSecrets()], this.captured, [this.home]);
  }

  async close(): Promise<void> {
    await this.sts.close();
    chmodSync(this.home, 0o700);
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** Backends under test: the file backend always; the keychain when a Secret Service is provided. */
export const BACKENDS: Backend[] = process.env.VAULT_TEST_KEYCHAIN === '1' ? ['file', 'keychain'] : ['file'];
