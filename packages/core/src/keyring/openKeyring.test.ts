import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VaultError } from '../errors.js';
import { FileKeyring } from './file/fileKeyring.js';
import { KeytarKeyring, type KeytarApi } from './keytarKeyring.js';
import { SUPPORTED_BACKENDS, defaultFileDir, normalizeBackendName, openKeyring, resolveBackendName } from './openKeyring.js';

const stubKeytar: KeytarApi = {
  getPassword: async () => null,
  setPassword: async () => undefined,
  deletePassword: async () => false,
  findCredentials: async () => [],
};
const loads = async () => stubKeytar;
const fails = async (): Promise<KeytarApi> => {
  throw new Error('libsecret-1.so.0: cannot open shared object file');
};
const DBUS = { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus' };

async function caught(promise: Promise<unknown>): Promise<VaultError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VaultError);
    return error as VaultError;
  }
  throw new Error('expected a VaultError');
}

describe('resolveBackendName', () => {
  it('prefers --backend, then AWS_VAULT_BACKEND, then the default', async () => {
    expect(await resolveBackendName({ backend: 'file', env: { AWS_VAULT_BACKEND: 'keychain' }, platform: 'darwin', loadKeytar: loads })).toBe('file');
    expect(await resolveBackendName({ env: { AWS_VAULT_BACKEND: 'file' }, platform: 'darwin', loadKeytar: loads })).toBe('file');
    expect(await resolveBackendName({ env: { AWS_VAULT_BACKEND: '' }, platform: 'darwin', loadKeytar: loads })).toBe('keychain');
    expect(await resolveBackendName({ backend: '', env: { AWS_VAULT_BACKEND: 'file' }, platform: 'darwin', loadKeytar: loads })).toBe('file');
  });

  it('accepts aws-vault’s names for the OS stores', async () => {
    for (const name of ['keychain', 'secret-service', 'wincred', 'Keychain']) {
      expect(await resolveBackendName({ backend: name, env: {}, platform: 'linux', loadKeytar: fails })).toBe('keychain');
    }
    expect(normalizeBackendName('file')).toBe('file');
    expect(normalizeBackendName('pass')).toBe('pass');
    expect(SUPPORTED_BACKENDS).toEqual(['keychain', 'secret-service', 'wincred', 'file', 'pass']);
  });

  it('refuses other backends with a usage error listing what works', async () => {
    const kwallet = await caught(resolveBackendName({ backend: 'kwallet', env: {} }));
    expect(kwallet.code).toBe('USAGE');
    expect(kwallet.message).toBe('the "kwallet" keyring backend of aws-vault is not supported by vault (--backend)');
    expect(kwallet.hint).toBe('use keychain (also secret-service, wincred), file or pass');
    for (const name of ['op', 'keyctl']) expect((await caught(resolveBackendName({ backend: name, env: {} }))).code).toBe('USAGE');
    const typo = await caught(resolveBackendName({ env: { AWS_VAULT_BACKEND: 'fiel' } }));
    expect(typo.message).toBe('unknown keyring backend "fiel" (AWS_VAULT_BACKEND)');
    expect(typo.hint).toContain('keychain');
    expect(typo.hint).toContain('file');
  });

  it('defaults to the keychain where keytar loads (and, on Linux, a D-Bus session exists), else to file', async () => {
    expect(await resolveBackendName({ env: {}, platform: 'darwin', loadKeytar: loads })).toBe('keychain');
    expect(await resolveBackendName({ env: {}, platform: 'win32', loadKeytar: loads })).toBe('keychain');
    expect(await resolveBackendName({ env: {}, platform: 'darwin', loadKeytar: fails })).toBe('file');
    expect(await resolveBackendName({ env: DBUS, platform: 'linux', loadKeytar: loads })).toBe('keychain');
    expect(await resolveBackendName({ env: DBUS, platform: 'linux', loadKeytar: fails })).toBe('file');
    let tried = false;
    const spy = async () => {
      tried = true;
      return stubKeytar;
    };
    expect(await resolveBackendName({ env: {}, platform: 'linux', loadKeytar: spy })).toBe('file');
    expect(tried).toBe(false);
  });
});

describe('defaultFileDir', () => {
  it('is ~/.awsvault/keys unless AWS_VAULT_FILE_DIR says otherwise', () => {
    expect(defaultFileDir({}, '/home/ana')).toBe('/home/ana/.awsvault/keys');
    expect(defaultFileDir({ AWS_VAULT_FILE_DIR: '' }, '/home/ana')).toBe('/home/ana/.awsvault/keys');
    expect(defaultFileDir({ AWS_VAULT_FILE_DIR: '/srv/keys' }, '/home/ana')).toBe('/srv/keys');
    expect(defaultFileDir({ AWS_VAULT_FILE_DIR: '~/.awsvault/keys/' }, '/home/ana')).toBe('/home/ana/.awsvault/keys/');
    expect(defaultFileDir({ AWS_VAULT_FILE_DIR: '~' }, '/home/ana')).toBe('/home/ana');
    expect(defaultFileDir({ AWS_VAULT_FILE_DIR: 'keys' }, '/home/ana')).toBe(resolve('keys'));
  });
});

describe('openKeyring', () => {
  it('opens the file backend in AWS_VAULT_FILE_DIR with the given passphrase', async () => {
    const home = await fs.mkdtemp(join(tmpdir(), 'vault-openkeyring-'));
    try {
      const dir = join(home, 'custom');
      let asked = 0;
      const keyring = await openKeyring({
        backend: 'file',
        env: { AWS_VAULT_FILE_DIR: dir },
        homeDir: home,
        passphrase: async () => {
          asked += 1;
          return 'pw';
        },
      });
      expect(keyring).toBeInstanceOf(FileKeyring);
      expect(keyring.backend).toBe('file');
      expect(asked).toBe(0);
      await keyring.set('central', 'v');
      expect(await fs.readdir(dir)).toEqual(['central']);
      expect(await keyring.get('central')).toBe('v');
      expect(asked).toBe(1);
    } finally {
      await fs.rm(home, { recursive: true, force: true });
    }
  });

  it('falls back to the file backend by default on Linux without a D-Bus session', async () => {
    const keyring = await openKeyring({ env: {}, platform: 'linux', homeDir: '/home/ana', passphrase: async () => 'pw' });
    expect(keyring).toBeInstanceOf(FileKeyring);
    expect((keyring as FileKeyring).dir).toBe('/home/ana/.awsvault/keys');
  });

  it('opens the keychain backend, and fails early with the remedy when it was asked for and cannot work', async () => {
    const keyring = await openKeyring({ backend: 'wincred', env: {}, platform: 'win32', homeDir: '/h', passphrase: async () => 'pw', loadKeytar: loads });
    expect(keyring).toBeInstanceOf(KeytarKeyring);
    expect(keyring.backend).toBe('keychain');

    const noBus = await caught(openKeyring({ backend: 'keychain', env: {}, platform: 'linux', homeDir: '/h', passphrase: async () => 'pw', loadKeytar: loads }));
    expect(noBus.code).toBe('KEYRING_UNAVAILABLE');
    expect(noBus.hint).toContain('--backend file');

    const noKeytar = await caught(openKeyring({ env: { AWS_VAULT_BACKEND: 'secret-service', ...DBUS }, platform: 'linux', homeDir: '/h', passphrase: async () => 'pw', loadKeytar: fails }));
    expect(noKeytar.code).toBe('KEYRING_UNAVAILABLE');
    expect(noKeytar.hint).toContain('libsecret-1-0');
  });
});
