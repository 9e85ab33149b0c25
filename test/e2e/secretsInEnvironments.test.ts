import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VAULT_BIN, vault } from '../support/cli.js';
import { environOf, findLeaks } from '../support/leaks.js';
import { FILE_PASSPHRASE, MFA_SERIAL, ROLE_A, World } from '../support/world.js';

/**
 * The file passphrase and the long-term keys of the user's shell stay in the vault CLI the user
 * ran: no process vault starts — the daemon, exec's command, a credential_process or mfa_process
 * run by the CLI or by the daemon — is handed them in its environment. Each of those processes'
 * `/proc/PID/environ` is read (the environment it was started with, whatever it unset later) and
 * scanned; the count is printed as `FIGURE envScan processes=N`.
 */

/** What a credential_process prints: temporary credentials (the daemon hands out no others). */
const PROCESS_KEY_ID = 'ASIAENVRECORDEDPROC1';
const PROCESS_SECRET = 'recorded-process-secret-access-key';

/**
 * A credential_process / mfa_process that writes its own `/proc/$$/environ` to the record
 * directory, then does its job. The directory is in the script, not the environment: the daemon
 * runs it with the daemon's environment, which a test cannot add to.
 */
function recorderScript(dir: string): string {
  return `#!/bin/sh
tr '\\000' '\\n' < /proc/$$/environ > "${dir}/$1.$$"
case "$1" in
  mfa_process) echo 123456 ;;
  credential_process)
    printf '{"Version":1,"AccessKeyId":"${PROCESS_KEY_ID}","SecretAccessKey":"${PROCESS_SECRET}","SessionToken":"recorded-process-session-token","Expiration":"%s"}\\n' "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" ;;
esac
`;
}

/** The exec child's own environ, printed: `sh -c` is the process exec started. */
const PRINT_OWN_ENVIRON = ['--', 'sh', '-c', `tr '\\000' '\\n' < /proc/$$/environ`];

describe('secrets stay out of the environments of the processes vault starts', () => {
  let world: World;
  let records: string;
  /**
   * Every environ read, by process. `shellKeysAllowed`: a credential_process or mfa_process the CLI
   * (or a daemon the user runs in the foreground) runs is given that process's environment minus the
   * passphrase — keys the user exported are theirs, as for any program run from that shell; the
   * daemon vault starts, what it runs, and exec's command must not hold them.
   */
  const scanned: Record<string, { environ: string; shellKeysAllowed: boolean }> = {};
  const shellKeys = () => ({ AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });

  /** The environs recorded by `kind` processes since the last call (each file is one process). */
  function recorded(kind: 'credential_process' | 'mfa_process', by: string): string[] {
    const files = readdirSync(records).filter((f) => f.startsWith(`${kind}.`));
    const environs = files.map((f) => {
      const environ = readFileSync(join(records, f), 'utf8');
      scanned[`${kind} run by ${by} (${f})`] = { environ, shellKeysAllowed: by !== 'the daemon' };
      rmSync(join(records, f));
      return environ;
    });
    return environs;
  }

  beforeAll(async () => {
    world = await World.create('file');
    records = join(world.home, 'environ-records');
    mkdirSync(records, { mode: 0o700 });
    const script = join(world.home, 'record-environ.sh');
    writeFileSync(script, recorderScript(records), { mode: 0o700 });
    appendFileSync(
      join(world.home, '.aws', 'config'),
      `
[profile env-process]
region = ap-northeast-1
credential_process = sh ${script} credential_process

[profile env-mfa-process]
region = ap-northeast-1
include_profile = central-account
mfa_serial = ${MFA_SERIAL}
role_arn = ${ROLE_A}
mfa_process = sh ${script} mfa_process
`,
    );
    // The keys are exported in the shell for `vault add --env`, and stay exported for every command below.
    expect((await world.vault(['add', '--env', 'central-account'], shellKeys())).code).toBe(0);
  });

  afterAll(async () => {
    if (world) {
      await world.vault(['server', 'stop']);
      await world.close();
    }
  });

  it("vault exec: the command's environment has no AWS_VAULT_FILE_PASSPHRASE", async () => {
    const result = await world.vault(['exec', 'env-process', ...PRINT_OWN_ENVIRON], shellKeys());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    scanned['exec child'] = { environ: result.stdout, shellKeysAllowed: false };
    expect(result.stdout).toContain(`AWS_ACCESS_KEY_ID=${PROCESS_KEY_ID}`);
    expect(result.stdout).not.toMatch(/^AWS_VAULT_FILE_PASSPHRASE=/m);
    expect(result.stdout).not.toContain(FILE_PASSPHRASE);
  });

  it('a credential_process the CLI runs is given no passphrase', () => {
    // Run by the `vault exec env-process` above: no daemon was running, so the CLI resolved it.
    const environs = recorded('credential_process', 'the CLI');
    expect(environs).toHaveLength(1);
    expect(environs[0]).toMatch(/^HOME=/m);
    expect(environs[0]).not.toMatch(/^AWS_VAULT_FILE_PASSPHRASE=/m);
    expect(environs[0]).not.toContain(FILE_PASSPHRASE);
  });

  it('an mfa_process the CLI runs is given no passphrase', async () => {
    const result = await world.vault(['exec', 'env-mfa-process', '--', 'true'], shellKeys());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const environs = recorded('mfa_process', 'the CLI');
    expect(environs).toHaveLength(1);
    expect(environs[0]).toMatch(/^AWS_VAULT_MFA_SERIAL=/m);
    expect(environs[0]).not.toMatch(/^AWS_VAULT_FILE_PASSPHRASE=/m);
    expect(environs[0]).not.toContain(FILE_PASSPHRASE);
  });

  it('the daemon is started with neither the passphrase nor a key exported in the shell, and still unlocks the file keyring', async () => {
    const started = await world.vault(['server', 'start'], shellKeys());
    expect(started.code).toBe(0);
    const pid = await world.captureDaemonEnviron();
    const environ = world.captured[`daemon environ (pid ${pid})`]!;
    scanned[`daemon (pid ${pid})`] = { environ, shellKeysAllowed: false };
    expect(environ).toMatch(/^HOME=/m);
    expect(environ).not.toMatch(/^AWS_VAULT_FILE_PASSPHRASE=/m);
    expect(environ).not.toContain(FILE_PASSPHRASE);
    expect(environ).not.toMatch(/^AWS_SECRET_ACCESS_KEY=/m);
    expect(environ).not.toContain(world.user.secretAccessKey);

    // A session over the stored key: the daemon decrypts the keyring with the passphrase it was handed.
    world.sts.resetCalls();
    const session = await world.vault(['session', 'start', '--format', 'json', '-t', '123456', 'account-a'], shellKeys());
    expect(session.stderr).toBe('');
    expect(session.code).toBe(0);
    const { uri, token } = JSON.parse(session.stdout) as { uri: string; token: string };
    const served = await fetch(uri, { headers: { Authorization: token } });
    expect(served.status).toBe(200);
    expect(((await served.json()) as { AccessKeyId: string }).AccessKeyId).toMatch(/^ASIA/);
    expect(world.sts.count('AssumeRole')).toBe(1);
    expect((await world.vault(['session', 'stop', '--all'])).code).toBe(0);
  });

  it('a credential_process the daemon runs is given neither the passphrase nor the keys of the shell that started it', async () => {
    const session = await world.vault(['session', 'start', '--format', 'json', 'env-process'], shellKeys());
    expect(session.stderr).toBe('');
    expect(session.code).toBe(0);
    const environs = recorded('credential_process', 'the daemon');
    expect(environs.length).toBeGreaterThanOrEqual(1);
    for (const environ of environs) {
      expect(environ).toMatch(/^PATH=/m);
      expect(environ).not.toMatch(/^AWS_VAULT_FILE_PASSPHRASE=/m);
      expect(environ).not.toContain(FILE_PASSPHRASE);
      expect(environ).not.toMatch(/^AWS_SECRET_ACCESS_KEY=/m);
      expect(environ).not.toContain(world.user.secretAccessKey);
    }
    expect((await world.vault(['session', 'stop', '--all'])).code).toBe(0);
    expect((await world.vault(['server', 'stop'])).code).toBe(0);
  });

  it('a daemon run in the foreground with the passphrase in its own environment hands it to no credential_process', async () => {
    // `vault server run` from a user's terminal: its environment is the shell's, passphrase included;
    // it reads the passphrase and removes it, so what it starts does not inherit it.
    const env = world.env({ ...shellKeys(), VAULT_STATE_DIR: join(world.home, 'foreground-daemon') });
    // A VAULT_STATE_DIR must exist (0700, the user's): vault refuses to create one.
    mkdirSync(env.VAULT_STATE_DIR!, { mode: 0o700 });
    const daemon: ChildProcess = spawn(process.execPath, [VAULT_BIN, 'server', 'run'], { env, stdio: 'ignore' });
    try {
      let status = await vault(['server', 'status'], { env });
      for (let i = 0; i < 100 && status.code !== 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        status = await vault(['server', 'status'], { env });
      }
      expect(status.code).toBe(0);
      const session = await world.vault(['session', 'start', '--format', 'json', 'env-process'], { ...shellKeys(), VAULT_STATE_DIR: env.VAULT_STATE_DIR });
      expect(session.stderr).toBe('');
      expect(session.code).toBe(0);
      const environs = recorded('credential_process', 'a foreground daemon');
      expect(environs.length).toBeGreaterThanOrEqual(1);
      for (const environ of environs) {
        expect(environ).not.toMatch(/^AWS_VAULT_FILE_PASSPHRASE=/m);
        expect(environ).not.toContain(FILE_PASSPHRASE);
      }
      await world.vault(['server', 'stop'], { VAULT_STATE_DIR: env.VAULT_STATE_DIR });
    } finally {
      daemon.kill();
    }
  });

  it('no scanned environment holds the passphrase or a long-term key', () => {
    const texts = (keysAllowed: boolean) =>
      Object.fromEntries(Object.entries(scanned).filter(([, s]) => s.shellKeysAllowed === keysAllowed).map(([name, s]) => [name, s.environ]));
    const leaks = [...findLeaks([FILE_PASSPHRASE], texts(true)), ...findLeaks([FILE_PASSPHRASE, world.user.secretAccessKey], texts(false))];
    process.stdout.write(`FIGURE envScan processes=${Object.keys(scanned).length} suite=secretsInEnvironments (${Object.keys(scanned).join('; ')})\n`);
    expect(leaks).toEqual([]);
    expect(Object.keys(scanned).length).toBeGreaterThanOrEqual(6);
  });
});
