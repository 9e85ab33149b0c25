import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLeaks } from '../support/leaks.js';
import { PassStore } from '../support/passStore.js';
import { FILE_PASSPHRASE, World } from '../support/world.js';

const SECOND = { accessKeyId: 'AKIAMIGRATETEST00002', secretAccessKey: 'mIgRaTeSeCoNdKeY0123456789abcdefGHIJKLMN' };
const OTHER = { accessKeyId: 'AKIAMIGRATETEST00003', secretAccessKey: 'oThErKeYiNtArGeT0123456789abcdefGHIJKLMN' };

/** `vault migrate-backend` between the file backend and a real pass store (gpg key made by the test). */
describe('vault migrate-backend (file ↔ pass, real pass + gpg)', () => {
  let world: World;
  let store: PassStore;
  let env: NodeJS.ProcessEnv;
  const keyDir = () => join(world.home, '.awsvault', 'keys');
  const migrate = (args: string[], extra: NodeJS.ProcessEnv = {}) => world.vault(['migrate-backend', ...args], { ...env, ...extra });
  const add = (backend: string, profile: string, key: { accessKeyId: string; secretAccessKey: string }) =>
    world.vault(['--backend', backend, 'add', '--env', '--no-add-config', profile], { ...env, AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey });
  const passEntries = () => store.pass(['ls']);
  const shownKey = (profile: string) => {
    const item = JSON.parse(store.pass(['show', profile])) as { Data: string };
    return JSON.parse(Buffer.from(item.Data, 'base64').toString('utf8')) as { AccessKeyID: string; SecretAccessKey: string };
  };

  beforeAll(async () => {
    world = await World.create('file');
    store = new PassStore(world.home, 'store');
    env = { GNUPGHOME: store.gnupgHome, AWS_VAULT_PASS_PASSWORD_STORE_DIR: store.dir };
    expect((await add('file', 'central-account', world.user)).code).toBe(0);
    expect((await add('file', 'second', SECOND)).code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    store?.close();
    await world?.close();
  });

  it('--dry-run says what it would copy and writes nothing', async () => {
    const result = await migrate(['--from', 'file', '--to', 'pass', '--dry-run', '--delete-source']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('central-account: would copy (file → pass)\nsecond: would copy (file → pass)\ndry run: nothing was written to pass or deleted from file\n');
    expect(passEntries()).not.toMatch(/central-account|second/);
    expect(readdirSync(keyDir()).sort()).toEqual(['central-account', 'second']);
  });

  it('copies each key, reads it back from the target, and keeps the source without --delete-source', async () => {
    const result = await migrate(['--from', 'file', '--to', 'pass', '--profile', 'central-account']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('central-account: copied (file → pass), read back from pass\n1 key(s) copied to pass; the file backend still holds them (--delete-source removes them once copied)\n');
    expect(shownKey('central-account')).toMatchObject({ AccessKeyID: world.user.accessKeyId, SecretAccessKey: world.user.secretAccessKey });
    expect(passEntries()).not.toContain('second');
    expect(readdirSync(keyDir()).sort()).toEqual(['central-account', 'second']);
  });

  it('leaves a different key already in the target alone without --overwrite, and replaces it with', async () => {
    expect((await add('pass', 'second', OTHER)).code).toBe(0);
    const kept = await migrate(['--from', 'file', '--to', 'pass', '--profile', 'second', '--delete-source']);
    expect(kept.code).toBe(0);
    expect(kept.stderr).toContain('second: left alone, pass holds a different key (--overwrite replaces it)\nsecond: kept in file (pass holds a different key)\n');
    expect(shownKey('second').AccessKeyID).toBe(OTHER.accessKeyId);
    expect(readdirSync(keyDir())).toContain('second');
    const replaced = await migrate(['--from', 'file', '--to', 'pass', '--profile', 'second', '--overwrite']);
    expect(replaced.code).toBe(0);
    expect(shownKey('second')).toMatchObject({ AccessKeyID: SECOND.accessKeyId, SecretAccessKey: SECOND.secretAccessKey });
  });

  it('--delete-source deletes from the source only keys the target holds, and the target then serves them', async () => {
    const result = await migrate(['--from', 'file', '--to', 'pass', '--delete-source']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      'central-account: already in pass (the same key)\nsecond: already in pass (the same key)\ncentral-account: deleted from file\nsecond: deleted from file\n0 key(s) copied to pass\n',
    );
    expect(readdirSync(keyDir())).toEqual([]);
    const listed = await world.vault(['--backend', 'pass', 'list', '--credentials'], env);
    expect(listed.stdout.split('\n')).toEqual(expect.arrayContaining(['central-account', 'second']));
  });

  it('a locked target (file items under another passphrase): one vault: line, exit 1, nothing copied or deleted', async () => {
    const before = passEntries();
    // The file backend holds an item under the real passphrase; the migration is given another one.
    expect((await add('file', 'planted', OTHER)).code).toBe(0);
    const refused = await migrate(['--from', 'pass', '--to', 'file', '--delete-source', '--overwrite'], { AWS_VAULT_FILE_PASSPHRASE: 'not-the-passphrase' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^vault: cannot use the file backend as the target: file keyring passphrase is wrong for [^\n]*; nothing was copied or deleted; use the passphrase[^\n]*\n$/);
    expect(passEntries()).toBe(before);
    expect(readdirSync(keyDir())).toEqual(['planted']);
  });

  it('a copy that does not read back (a store encrypted to a key this gpg cannot decrypt): nothing deleted, no stray copy', async () => {
    const other = new PassStore(world.home, 'unused', join(world.home, '.gnupg-other'), 'someone-else@example.invalid');
    try {
      store.trustPublicKeyOf(other);
      const foreign = join(world.home, 'foreign-store');
      mkdirSync(foreign);
      writeFileSync(join(foreign, '.gpg-id'), `${other.keyId}\n`);
      const result = await migrate(['--from', 'file', '--to', 'pass', '--profile', 'planted', '--delete-source'], { AWS_VAULT_PASS_PASSWORD_STORE_DIR: foreign });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^vault: the key for planted did not read back from pass as written \(cannot read pass entry planted: [^\n]*\); nothing was deleted from file; fix the pass backend[^\n]*\n$/);
      expect(readdirSync(foreign)).toEqual(['.gpg-id']);
      expect(readdirSync(keyDir())).toContain('planted');
    } finally {
      other.close();
      rmSync(join(world.home, '.gnupg-other'), { recursive: true, force: true });
    }
  });

  it('the same backend twice is refused', async () => {
    const result = await migrate(['--from', 'file', '--to', 'file']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('vault: --from and --to are both the file backend; name two different backends, e.g. --from file --to pass\n');
  });

  it('no key or passphrase reached an output or a plain file', () => {
    const leaks = findLeaks([world.user.secretAccessKey, SECOND.secretAccessKey, OTHER.secretAccessKey, FILE_PASSPHRASE, 'not-the-passphrase'], world.captured, [world.home]);
    expect(leaks).toEqual([]);
    expect(readFileSync(join(world.home, '.aws', 'config'), 'utf8')).not.toContain('planted');
  });
});
