import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialKeyring, PassKeyring, VaultError, passOptions } from '@vault/core';
import { PassStore, awsVaultItem } from '../support/passStore.js';

const SECRET = "pAsSbAcKeNdSeCrEtKeY0123456789abcdefABCD";

async function caught(promise: Promise<unknown>): Promise<VaultError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VaultError) return error;
    throw error;
  }
  throw new Error('expected a VaultError');
}

/** The pass backend against Debian's real `pass` and gpg, with a key generated for the test. */
describe('pass keyring (real pass + gpg)', () => {
  let root: string;
  let store: PassStore;
  const keyring = (extra: { prefix?: string; dir?: string } = {}) =>
    new PassKeyring(passOptions({ prefix: extra.prefix, dir: extra.dir ?? store.dir }, store.env(), root));

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'vault-pass-'));
    store = new PassStore(root);
  }, 60_000);
  afterAll(() => {
    store.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('reads a key aws-vault stored (its item JSON, under AWS_VAULT_PASS_PREFIX) as it is', async () => {
    const stored = JSON.stringify({ AccessKeyID: 'AKIAPASSREADTEST0001', SecretAccessKey: SECRET, SessionToken: '', Source: '', CanExpire: false, Expires: '0001-01-01T00:00:00Z' });
    store.pass(['insert', '-m', '-f', 'aws-vault/central'], awsVaultItem('central', stored, 'aws-vault (central)'));
    const options = passOptions({}, store.env({ AWS_VAULT_PASS_PASSWORD_STORE_DIR: store.dir, AWS_VAULT_PASS_PREFIX: 'aws-vault' }), root);
    const credentials = new CredentialKeyring(new PassKeyring(options));
    expect(await credentials.get('central')).toEqual({ accessKeyId: 'AKIAPASSREADTEST0001', secretAccessKey: SECRET, sessionToken: undefined });
    expect(await credentials.profiles()).toEqual(['central']);
  });

  it('writes entries pass (and so aws-vault) decrypts to aws-vault’s item, and lists, replaces and removes them', async () => {
    const ring = keyring({ prefix: 'written' });
    const credentials = new CredentialKeyring(ring);
    await credentials.set('dev', { accessKeyId: 'AKIAPASSWRITETEST001', secretAccessKey: SECRET });
    const item = JSON.parse(store.pass(['show', 'written/dev'])) as Record<string, unknown>;
    expect(Object.keys(item)).toEqual(['Key', 'Data', 'Label', 'Description', 'KeychainNotTrustApplication', 'KeychainNotSynchronizable']);
    expect(item.Key).toBe('dev');
    expect(item.Label).toBe('aws-vault (dev)');
    expect(JSON.parse(Buffer.from(String(item.Data), 'base64').toString('utf8'))).toMatchObject({ AccessKeyID: 'AKIAPASSWRITETEST001', SecretAccessKey: SECRET });
    // The file on disk is gpg's, not the plaintext.
    expect(readFileSync(join(store.dir, 'written', 'dev.gpg')).toString('latin1')).not.toContain(SECRET);

    await ring.set('sts.GetSessionToken,ZGV2,,1700000000', '{"x":1}'); // cached credentials, aws-vault's key shape
    expect(await ring.keys()).toEqual(['dev', 'sts.GetSessionToken,ZGV2,,1700000000']);
    expect(await credentials.profiles()).toEqual(['dev']);
    await credentials.set('dev', { accessKeyId: 'AKIAPASSWRITETEST002', secretAccessKey: SECRET });
    expect((await credentials.get('dev'))?.accessKeyId).toBe('AKIAPASSWRITETEST002');
    expect(await ring.remove('dev')).toBe(true);
    expect(await ring.remove('dev')).toBe(false);
    expect(await ring.get('dev')).toBeUndefined();
  });

  it('refuses to write into a store with no gpg key, with the remedy, and leaves what was stored', async () => {
    const bare = join(root, 'uninitialised');
    const error = await caught(keyring({ dir: bare }).set('dev', 'value'));
    expect(error.code).toBe('KEYRING_UNAVAILABLE');
    expect(error.toLine()).toMatch(/^cannot write pass entry dev: the pass store .*uninitialised has no usable gpg key to encrypt to; run `pass init GPG-KEY-ID`/);

    // A store whose .gpg-id names a key gpg does not have: the old entry survives the failed write.
    const ring = keyring({ prefix: 'kept' });
    await ring.set('dev', 'before');
    const file = join(store.dir, 'kept', 'dev.gpg');
    const before = readFileSync(file);
    writeFileSync(join(store.dir, 'kept', '.gpg-id'), 'nobody@example.invalid\n');
    const refused = await caught(ring.set('dev', 'after'));
    expect(refused.code).toBe('KEYRING_UNAVAILABLE');
    expect(refused.toLine()).toContain('no usable gpg key');
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(await ring.get('dev')).toBe('before');
    rmSync(join(store.dir, 'kept', '.gpg-id'));
  });

  it('says which program is missing when pass is not installed', async () => {
    const ring = new PassKeyring(passOptions({ command: 'pass-not-installed' }, store.env(), root));
    const error = await caught(ring.ready());
    expect(error.code).toBe('KEYRING_UNAVAILABLE');
    expect(error.toLine()).toBe('the pass program "pass-not-installed" was not found; install pass (Debian: apt-get install pass), or name it with --pass-cmd (AWS_VAULT_PASS_CMD)');
    expect(existsSync(join(root, 'pass-not-installed'))).toBe(false);
  });
});
