import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassStore, awsVaultItem } from '../support/passStore.js';
import { ROLE_A, World } from '../support/world.js';

const AWS_CLI = '/usr/bin/aws';
const assumedArn = (roleArn: string) => roleArn.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/');

/**
 * `--backend pass` end to end: a password store aws-vault filled is used as it is, `vault add`
 * writes what aws-vault reads, and `pass` is started with no secret in its arguments or
 * environment (a wrapper named by AWS_VAULT_PASS_CMD records both under HOME, which the leak
 * scan reads).
 */
describe('vault with the pass backend (real pass + gpg)', () => {
  let world: World;
  let store: PassStore;
  let passLog: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    world = await World.create('file');
    store = new PassStore(world.home, 'aws-vault-store');
    passLog = join(world.home, 'pass-calls.log');
    const wrapper = join(world.home, 'pass-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\n{ echo "argv: $*"; env; } >> '${passLog}'\nexec pass "$@"\n`);
    chmodSync(wrapper, 0o755);
    env = {
      AWS_VAULT_BACKEND: 'pass',
      GNUPGHOME: store.gnupgHome,
      AWS_VAULT_PASS_PASSWORD_STORE_DIR: store.dir,
      AWS_VAULT_PASS_PREFIX: 'aws-vault',
      AWS_VAULT_PASS_CMD: wrapper,
    };
  }, 60_000);

  afterAll(async () => {
    await world?.vault(['server', 'stop'], env);
    store?.close();
    await world?.close();
  });

  it('runs the AWS CLI as the role from a key aws-vault stored in the password store', async () => {
    const stored = JSON.stringify({
      AccessKeyID: world.user.accessKeyId,
      SecretAccessKey: world.user.secretAccessKey,
      SessionToken: '',
      Source: '',
      CanExpire: false,
      Expires: '0001-01-01T00:00:00Z',
    });
    store.pass(['insert', '-m', '-f', 'aws-vault/central-account'], awsVaultItem('central-account', stored, 'aws-vault (central-account)'));
    const listed = await world.vault(['list', '--credentials'], env);
    expect(listed.stdout.split('\n')).toContain('central-account');
    const result = await world.vault(['exec', 'account-a', '-t', '123456', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(new RegExp(`^${assumedArn(ROLE_A)}/`));
    // The cached session went into the store too, where aws-vault keeps it.
    expect(store.pass(['ls'])).toMatch(/sts\.GetSessionToken,/);
  });

  it('vault add writes an entry aws-vault reads: its item JSON under the prefix, the key via stdin', async () => {
    const added = await world.vault(['add', '--env', '--no-add-config', 'second'], {
      ...env,
      AWS_ACCESS_KEY_ID: world.user.accessKeyId,
      AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey,
    });
    expect(added.stderr).toMatch(/Added credentials to profile "second" in vault \(pass backend\)/);
    expect(added.code).toBe(0);
    const item = JSON.parse(store.pass(['show', 'aws-vault/second'])) as { Key: string; Data: string; Label: string };
    expect(item.Key).toBe('second');
    expect(item.Label).toBe('aws-vault (second)');
    expect(JSON.parse(Buffer.from(item.Data, 'base64').toString('utf8'))).toMatchObject({ AccessKeyID: world.user.accessKeyId, SecretAccessKey: world.user.secretAccessKey });
    expect(readFileSync(passLog, 'utf8')).toMatch(/^argv: insert --multiline --force aws-vault\/second$/m);
  });

  it('a store with no gpg key: one vault: line with the remedy, exit 1, nothing stored', async () => {
    const bare = join(world.home, 'no-key-store');
    const result = await world.vault(['--pass-dir', bare, 'add', '--env', '--no-add-config', 'third'], {
      ...env,
      AWS_ACCESS_KEY_ID: world.user.accessKeyId,
      AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^vault: cannot write pass entry aws-vault\/third: the pass store .*no-key-store has no usable gpg key to encrypt to; run `pass init GPG-KEY-ID`[^\n]*\n$/);
    expect(store.pass(['ls'])).not.toContain('third');
  });

  it('the daemon reads the same store: exec --server serves the role from the pass backend', async () => {
    const result = await world.vault(['exec', '--server', 'account-a', '-t', '123456', '--', AWS_CLI, 'sts', 'get-caller-identity', '--endpoint-url', world.sts.url, '--output', 'json'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Arn).toMatch(new RegExp(`^${assumedArn(ROLE_A)}/`));
    await world.captureDaemonEnviron();
    expect((await world.vault(['server', 'stop'], env)).code).toBe(0);
  }, 90_000);

  it('--keychain is refused with what vault uses instead', async () => {
    const result = await world.vault(['--keychain', 'login', 'list'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^vault: --keychain is an aws-vault flag vault does not take: vault keeps keys in your login keychain[^\n]*; drop --keychain[^\n]*\n$/);
  });

  it('no secret reached an argument, an environment, an output or a plain file', () => {
    world.capture('pass calls', readFileSync(passLog, 'utf8'));
    expect(world.leaks()).toEqual([]);
  });
});
