import { spawnSync } from 'node:child_process';
import { createCipheriv, pbkdf2Sync, randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { VaultError } from '../../errors.js';
import { CredentialKeyring } from '../credentialKeyring.js';
import {
  FILE_KEYRING_MAX_PBES2_COUNT,
  FILE_KEYRING_PBES2_COUNT,
  FileKeyring,
  type FileKeyringOptions,
} from './fileKeyring.js';
import { fileKeyringFileName, fileKeyringKeyName } from './fileNames.js';

const PASS = 'correct horse battery staple';
const FAST = 1000; // PBES2 count for tests that do not look at the KDF itself

let home: string;
let dir: string;

beforeEach(async () => {
  home = await fs.mkdtemp(join(tmpdir(), 'vault-filekeyring-'));
  dir = join(home, '.awsvault', 'keys');
});
afterEach(async () => {
  await fs.rm(home, { recursive: true, force: true });
});

function keyring(options: Partial<FileKeyringOptions> & { pass?: string } = {}): FileKeyring & { asked: () => number } {
  let asked = 0;
  const { pass = PASS, ...rest } = options;
  const k = new FileKeyring({
    dir,
    homeDir: home,
    pbes2Count: FAST,
    passphrase: async () => {
      asked += 1;
      return pass;
    },
    ...rest,
  });
  return Object.assign(k, { asked: () => asked });
}

async function caught(promise: Promise<unknown>): Promise<VaultError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VaultError);
    return error as VaultError;
  }
  throw new Error('expected a VaultError');
}

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * Plants a JWE with a header of our choosing (a p2c no real tool writes), for the hostile-file
 * tests only: built with node:crypto the way jose2go v1.5 builds one (sorted header keys, a
 * 12-byte salt, AES-KW with the RFC 3394 IV, AAD = the base64url header). Compatibility with
 * aws-vault is tested against an independent implementation (python3-jwcrypto) instead, below.
 */
function plantToken(payload: string, passphrase: string, header: Record<string, unknown> = {}): string {
  const alg = 'PBES2-HS256+A128KW';
  const salt = randomBytes(12);
  const p2c = (header.p2c as number | undefined) ?? 8192;
  const fields: Record<string, unknown> = { alg, created: '2023-05-25 07:30:06.123456789 +1000 AEST m=+0.004567890', enc: 'A256GCM', p2c, p2s: b64u(salt), ...header };
  const headerJson = JSON.stringify(Object.fromEntries(Object.keys(fields).sort().map((k) => [k, fields[k]])));
  const kek = pbkdf2Sync(passphrase, Buffer.concat([Buffer.from(alg), Buffer.of(0), salt]), Math.min(p2c, 8192), 16, 'sha256');
  const cek = randomBytes(32);
  const wrap = createCipheriv('id-aes128-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
  const encryptedKey = Buffer.concat([wrap.update(cek), wrap.final()]);
  const iv = randomBytes(12);
  const gcm = createCipheriv('aes-256-gcm', cek, iv);
  gcm.setAAD(Buffer.from(b64u(headerJson)));
  const ciphertext = Buffer.concat([gcm.update(payload, 'utf8'), gcm.final()]);
  return [b64u(headerJson), b64u(encryptedKey), b64u(iv), b64u(ciphertext), b64u(gcm.getAuthTag())].join('.');
}

/** Go's json.Marshal(keyring.Item{...}), field order and all. */
function goItem(key: string, data: string, label: string): string {
  return JSON.stringify({
    Key: key,
    Data: Buffer.from(data, 'utf8').toString('base64'),
    Label: label,
    Description: '',
    KeychainNotTrustApplication: true,
    KeychainNotSynchronizable: false,
  });
}

const TESTDATA = fileURLToPath(new URL('./testdata/', import.meta.url));
const PYTHON = '/usr/bin/python3';

/**
 * The JWE half of aws-vault's file format through python3-jwcrypto, an implementation that shares
 * no code with ours (testdata/jwcrypto_file_item.py). Fails, never skips, when it cannot run.
 */
function jwcrypto(args: string[], input: string, passphrase: string): string {
  const run = spawnSync(PYTHON, [join(TESTDATA, 'jwcrypto_file_item.py'), ...args], {
    input,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, JWCRYPTO_PASSPHRASE: passphrase },
    timeout: 20_000,
  });
  if (run.status !== 0) {
    throw new Error(
      `python3-jwcrypto ${args[0]} failed (${run.error ? String(run.error) : `exit ${run.status}`}): ${run.stderr.trim().split('\n').pop()}; ` +
        'this test needs it: apt-get install python3-jwcrypto (scripts/setup.sh installs it)',
    );
  }
  return run.stdout;
}

const AWS_VAULT_SECRET = '{"AccessKeyID":"AKIAIOSFODNN7EXAMPLE","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","SessionToken":"","Source":"","CanExpire":false,"Expires":"0001-01-01T00:00:00Z"}';

/** Reads an aws-vault item (file `central%2Faccount`) with our FileKeyring and checks every field. */
async function expectAwsVaultItemReads(token: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const key = 'central/account';
  await fs.writeFile(join(dir, 'central%2Faccount'), token, { mode: 0o600 });
  const k = keyring();
  expect(await k.keys()).toEqual([key]);
  expect(await k.get(key)).toBe(AWS_VAULT_SECRET);
  expect(await new CredentialKeyring(k).get(key)).toEqual({
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    sessionToken: undefined,
  });
  // and a wrong passphrase on an aws-vault file is told apart from damage
  expect((await caught(keyring({ pass: 'nope' }).get(key))).code).toBe('KEYRING_BAD_PASSPHRASE');
}

describe('FileKeyring', () => {
  it('round-trips values, labels and keys, and removes', async () => {
    const k = keyring();
    expect(await k.keys()).toEqual([]);
    expect(await k.get('central')).toBeUndefined();
    await k.set('central', '{"AccessKeyID":"AKIA1","SecretAccessKey":"s3cr3t ünï"}', 'aws-vault (central)');
    await k.set('other', 'two');
    expect(await k.get('central')).toBe('{"AccessKeyID":"AKIA1","SecretAccessKey":"s3cr3t ünï"}');
    expect(await k.keys()).toEqual(['central', 'other']);
    await k.set('other', 'three');
    expect(await k.get('other')).toBe('three');
    expect(await k.remove('other')).toBe(true);
    expect(await k.remove('other')).toBe(false);
    expect(await k.get('other')).toBeUndefined();
    expect(await k.keys()).toEqual(['central']);
    // A second instance (another process) reads it with the same passphrase.
    expect(await keyring().get('central')).toContain('AKIA1');
  });

  it('asks for the passphrase lazily and once per instance', async () => {
    const k = keyring();
    expect(await k.keys()).toEqual([]);
    expect(await k.get('missing')).toBeUndefined();
    expect(await k.remove('missing')).toBe(false);
    expect(k.asked()).toBe(0);
    await k.set('a', '1');
    await k.set('b', '2');
    await k.get('a');
    await k.get('b');
    expect(k.asked()).toBe(1);
  });

  it('asks again after a failed prompt', async () => {
    let calls = 0;
    const k = keyring({
      passphrase: async () => {
        calls += 1;
        if (calls === 1) throw new VaultError('USAGE', 'no terminal to ask for the passphrase');
        return PASS;
      },
    });
    expect((await caught(k.set('a', '1'))).code).toBe('USAGE');
    await k.set('a', '1');
    expect(await k.get('a')).toBe('1');
    expect(calls).toBe(2);
  });

  it('creates the directory 0700 and items 0600, and tightens a loose existing directory', async () => {
    if (process.platform === 'win32') return;
    const k = keyring();
    await k.set('central', 'v');
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    expect((await fs.stat(join(dir, 'central'))).mode & 0o777).toBe(0o600);

    await fs.chmod(dir, 0o755);
    const k2 = keyring();
    expect(await k2.keys()).toEqual(['central']);
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('creates nothing on reads', async () => {
    const k = keyring();
    expect(await k.keys()).toEqual([]);
    expect(await k.get('x')).toBeUndefined();
    await expect(fs.stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a directory path that is a file', async () => {
    await fs.mkdir(join(home, '.awsvault'), { recursive: true });
    await fs.writeFile(dir, 'not a dir');
    const error = await caught(keyring().set('a', '1'));
    expect(error.code).toBe('KEYRING_UNAVAILABLE');
    expect(error.message).toContain('~/.awsvault/keys is not a directory');
  });

  describe('atomic writes', () => {
    const tempFiles = async () => (await fs.readdir(dir)).filter((n) => n.startsWith('.%tmp-'));

    it('keeps the old value when writing the temp file fails (ENOSPC)', async () => {
      await keyring().set('central', 'old-value');
      const k = keyring({
        fs: {
          open: (async (...args: Parameters<typeof fs.open>) => {
            const handle = await fs.open(...args);
            if (String(args[0]).includes('.%tmp-')) {
              handle.writeFile = async () => {
                throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
              };
            }
            return handle;
          }) as typeof fs.open,
        },
      });
      const error = await caught(k.set('central', 'new-secret-value'));
      expect(error.code).toBe('KEYRING_WRITE');
      expect(error.message).toBe('could not write the file keyring item central (~/.awsvault/keys/central): ENOSPC (no space left on device)');
      expect(error.toLine()).not.toContain('new-secret-value');
      expect(error.toLine()).not.toContain(PASS);
      expect(await keyring().get('central')).toBe('old-value');
      expect(await tempFiles()).toEqual([]);
    });

    it('keeps the old value when the rename fails (read-only file system)', async () => {
      await keyring().set('central', 'old-value');
      const k = keyring({
        fs: {
          rename: async () => {
            throw Object.assign(new Error('EROFS: read-only file system, rename'), { code: 'EROFS' });
          },
        },
      });
      const error = await caught(k.set('central', 'new-value'));
      expect(error.code).toBe('KEYRING_WRITE');
      expect(error.message).toContain('EROFS (read-only file system)');
      expect(error.hint).toContain('previous value');
      expect(await keyring().get('central')).toBe('old-value');
      expect(await tempFiles()).toEqual([]);
    });

    it('reports a real failure (a directory in the item’s place) and leaves no temp file', async () => {
      const k = keyring();
      await k.set('other', 'kept');
      await fs.mkdir(join(dir, 'central', 'sub'), { recursive: true });
      const error = await caught(k.set('central', 'v'));
      expect(error.code).toBe('KEYRING_WRITE');
      expect(error.message).toMatch(/^could not write the file keyring item central \(~\/\.awsvault\/keys\/central\): E(ISDIR|NOTEMPTY|EXIST)/);
      expect(await tempFiles()).toEqual([]);
      expect(await k.keys()).toEqual(['other']);
      expect(await k.get('other')).toBe('kept');
      expect((await caught(k.get('central'))).code).toBe('KEYRING_CORRUPT');
    });

    it('loses nothing with 50 concurrent sets of different keys', async () => {
      const k = keyring();
      const keys = Array.from({ length: 50 }, (_, i) => `profile-${i}`);
      await Promise.all(keys.map((key) => k.set(key, `value of ${key}`)));
      expect(await k.keys()).toEqual([...keys].sort());
      const other = keyring();
      for (const key of keys) expect(await other.get(key)).toBe(`value of ${key}`);
      expect(await tempFiles()).toEqual([]);
      expect(k.asked()).toBe(1);
    });

    it('keeps one whole value when the same key is written concurrently', async () => {
      const k = keyring();
      const values = Array.from({ length: 10 }, (_, i) => `value-${i}-${'x'.repeat(i * 100)}`);
      await Promise.all(values.map((v) => k.set('same', v)));
      expect(values).toContain(await keyring().get('same'));
    });
  });

  describe('passphrase and damage', () => {
    it('reports a wrong passphrase, naming the file, without the passphrase', async () => {
      await keyring().set('central', 'secret-value');
      const wrong = keyring({ pass: 'wrong passphrase' });
      const error = await caught(wrong.get('central'));
      expect(error.code).toBe('KEYRING_BAD_PASSPHRASE');
      expect(error.message).toBe('file keyring passphrase is wrong for ~/.awsvault/keys/central');
      expect(error.hint).toMatch(/AWS_VAULT_FILE_PASSPHRASE/);
      expect(error.toLine()).not.toMatch(/wrong passphrase|correct horse|secret-value/);
    });

    it('refuses to write with a passphrase that opens none of the existing items', async () => {
      await keyring().set('central', 'v');
      const wrong = keyring({ pass: 'typo' });
      const error = await caught(wrong.set('new', 'v2'));
      expect(error.code).toBe('KEYRING_BAD_PASSPHRASE');
      expect(error.message).toBe('file keyring passphrase is wrong for ~/.awsvault/keys/central; nothing was written');
      expect(await keyring().keys()).toEqual(['central']);
      // An empty directory accepts any passphrase.
      await fs.rm(join(dir, 'central'));
      await wrong.set('new', 'v2');
      expect(await keyring({ pass: 'typo' }).get('new')).toBe('v2');
    });

    it('reports a tampered ciphertext as corrupt, and other items stay readable', async () => {
      const k = keyring();
      await k.set('central', 'v1');
      await k.set('other', 'v2');
      const path = join(dir, 'central');
      const parts = (await fs.readFile(path, 'utf8')).split('.');
      const ct = Buffer.from(parts[3]!, 'base64url');
      ct[0]! ^= 1;
      parts[3] = b64u(ct);
      await fs.writeFile(path, parts.join('.'));
      const fresh = keyring();
      const error = await caught(fresh.get('central'));
      expect(error.code).toBe('KEYRING_CORRUPT');
      expect(error.message).toBe('the file keyring item central (~/.awsvault/keys/central) is damaged and cannot be decrypted');
      expect(await fresh.get('other')).toBe('v2');
      expect(await fresh.keys()).toEqual(['central', 'other']);
    });

    it('reports a tampered header as corrupt (not as a wrong passphrase)', async () => {
      const k = keyring();
      await k.set('central', 'v1');
      const path = join(dir, 'central');
      const parts = (await fs.readFile(path, 'utf8')).split('.');
      const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString()) as Record<string, unknown>;
      header.created = 'yesterday';
      parts[0] = b64u(JSON.stringify(header));
      await fs.writeFile(path, parts.join('.'));
      expect((await caught(keyring().get('central'))).code).toBe('KEYRING_CORRUPT');
    });

    it('reports truncated and empty files as corrupt', async () => {
      const k = keyring();
      await k.set('half', 'v1');
      await k.set('tagless', 'v2');
      await k.set('empty', 'v3');
      await k.set('fine', 'v4');
      const half = await fs.readFile(join(dir, 'half'), 'utf8');
      await fs.writeFile(join(dir, 'half'), half.slice(0, Math.floor(half.length / 2)));
      const tagless = await fs.readFile(join(dir, 'tagless'), 'utf8');
      await fs.writeFile(join(dir, 'tagless'), tagless.slice(0, tagless.length - 5));
      await fs.writeFile(join(dir, 'empty'), '');
      const fresh = keyring();
      for (const key of ['half', 'tagless', 'empty']) {
        const error = await caught(fresh.get(key));
        expect(error.code, key).toBe('KEYRING_CORRUPT');
        expect(error.message).toContain(`item ${key} (~/.awsvault/keys/${key})`);
      }
      expect(await fresh.get('fine')).toBe('v4');
    });

    it('refuses an absurd PBES2 count quickly instead of hanging', async () => {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await fs.writeFile(join(dir, 'slow'), plantToken(goItem('slow', 'v', ''), PASS, { p2c: 2 ** 31 }));
      // Deriving with p2c = 2^31 would take minutes: the test's 30 s timeout is what catches a
      // reader that tries. How long the refusal takes is a figure, not a requirement.
      const started = performance.now();
      expect((await caught(keyring().get('slow'))).code).toBe('KEYRING_CORRUPT');
      console.log(`FIGURE fileKeyring refusing p2c=2^31: ${(performance.now() - started).toFixed(1)} ms`);
    });
  });

  describe('file names', () => {
    it('escapes like aws-vault (percent.Encode(key, "/"))', () => {
      expect(fileKeyringFileName('abc/.././123')).toBe('abc%2F..%2F.%2F123'); // 99designs/keyring file_test.go
      expect(fileKeyringFileName('100%')).toBe('100%25');
      expect(fileKeyringFileName('%2F')).toBe('%252F');
      expect(fileKeyringFileName('with space,comma')).toBe('with space,comma');
      expect(fileKeyringFileName('ünï/日本')).toBe('ünï%2F日本');
      expect(fileKeyringKeyName('abc%2F..%2F.%2F123')).toBe('abc/.././123');
      expect(fileKeyringKeyName('%C3%BC%2f')).toBe('ü/'); // Go's percent.Decode takes any hex pair
      expect(fileKeyringKeyName('50%')).toBe('50%');
    });

    it('round-trips odd key names through the file system', async () => {
      const k = keyring();
      const names = [
        'https://portal.awsapps.com/start',
        'a/b',
        'x,y',
        'with space',
        'ünïcødé/日本語',
        '100%',
        '%2F',
        '.hidden',
        'sts.GetSessionToken,Y2VudHJhbA==,YXJuOmF3czppYW06OjExMTExMTExMTExMTptZmEvdXNlcg==,1700000000',
      ];
      for (const name of names) await k.set(name, `v:${name}`);
      expect(await k.keys()).toEqual([...names].sort());
      const files = await fs.readdir(dir);
      expect(files).toEqual(expect.arrayContaining(['https:%2F%2Fportal.awsapps.com%2Fstart', 'a%2Fb', 'ünïcødé%2F日本語', '100%25', '%252F']));
      const fresh = keyring();
      for (const name of names) expect(await fresh.get(name)).toBe(`v:${name}`);
      for (const name of names) expect(await fresh.remove(name)).toBe(true);
      expect(await fs.readdir(dir)).toEqual([]);
    });

    it('refuses keys that make no file name, and never reads outside the directory', async () => {
      const k = keyring();
      for (const bad of ['', '.', '..', 'x'.repeat(256), 'nul\0byte']) {
        expect((await caught(k.set(bad, 'v'))).code).toBe('USAGE');
        expect(await k.get(bad)).toBeUndefined();
        expect(await k.remove(bad)).toBe(false);
      }
    });

    it('ignores temp files, foreign files and directories in keys()', async () => {
      const k = keyring();
      await k.set('central', 'v');
      await fs.writeFile(join(dir, '.%tmp-0123456789abcdef'), 'partial');
      await fs.writeFile(join(dir, 'README.txt'), 'these are my keys');
      await fs.writeFile(join(dir, '.DS_Store'), Buffer.from([0, 0, 0, 1, 66, 117, 100, 49]));
      await fs.mkdir(join(dir, 'subdir'));
      // a name the escaping never produces (aws-vault's Get could not find it either)
      await fs.copyFile(join(dir, 'central'), join(dir, 'centr%61l'));
      expect(await k.keys()).toEqual(['central']);
    });
  });

  describe('aws-vault compatibility (against python3-jwcrypto, an independent JOSE implementation)', () => {
    it('reads an aws-vault item that jwcrypto encrypted (the committed fixture: fixed bytes)', async () => {
      // testdata/README.md says how the fixture was made.
      await expectAwsVaultItemReads(readFileSync(join(TESTDATA, 'aws-vault-central-account.jwe'), 'utf8').trim());
    });

    it('reads an aws-vault item that jwcrypto encrypts now', async () => {
      const item = goItem('central/account', AWS_VAULT_SECRET, 'aws-vault (central/account)');
      const token = jwcrypto(['encrypt', '2023-05-25 07:30:06.123456789 +1000 AEST m=+0.004567890'], item, PASS);
      expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toMatchObject({ alg: 'PBES2-HS256+A128KW', enc: 'A256GCM', p2c: 8192 });
      await expectAwsVaultItemReads(token);
    });

    it('writes what jwcrypto decrypts, with the chosen PBES2 count and aws-vault’s item layout', async () => {
      const k = keyring({ pbes2Count: undefined, now: () => new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 670)) });
      await k.set('central', '{"AccessKeyID":"AKIA2"}', 'aws-vault (central)');
      const token = await fs.readFile(join(dir, 'central'), 'utf8');
      const { header, payload } = JSON.parse(jwcrypto(['decrypt'], token, PASS)) as { header: Record<string, unknown>; payload: string };
      expect(header).toMatchObject({ alg: 'PBES2-HS256+A128KW', enc: 'A256GCM', p2c: FILE_KEYRING_PBES2_COUNT, created: '2024-01-02 03:04:05.67 +0000 UTC' });
      expect(FILE_KEYRING_PBES2_COUNT).toBeLessThanOrEqual(FILE_KEYRING_MAX_PBES2_COUNT); // jose2go ≥ 1.6 refuses more
      expect(Buffer.from(header.p2s as string, 'base64url').length).toBeGreaterThanOrEqual(12);
      const item = JSON.parse(payload) as Record<string, unknown>;
      expect(Object.keys(item)).toEqual(['Key', 'Data', 'Label', 'Description', 'KeychainNotTrustApplication', 'KeychainNotSynchronizable']);
      expect(item).toMatchObject({ Key: 'central', Label: 'aws-vault (central)', Description: '' });
      expect(Buffer.from(item.Data as string, 'base64').toString()).toBe('{"AccessKeyID":"AKIA2"}');
      // and the wrong passphrase does not open it there either
      expect(() => jwcrypto(['decrypt'], token, 'nope')).toThrow(/python3-jwcrypto decrypt failed/);
    });
  });
});

describe('rememberDecrypted (the daemon)', () => {
  it('pays the KDF once per item, and never returns a value the file no longer holds', async () => {
    const writer = keyring();
    await writer.set('central-account', 'first');
    const daemon = keyring({ rememberDecrypted: true });
    const derive = vi.spyOn(globalThis.crypto.subtle, 'deriveBits');
    try {
      expect(await daemon.get('central-account')).toBe('first');
      const afterFirst = derive.mock.calls.length;
      expect(afterFirst).toBeGreaterThan(0);
      expect(await daemon.get('central-account')).toBe('first');
      expect(derive.mock.calls.length).toBe(afterFirst); // remembered: no KDF

      // Another process (a CLI command) writes the item: the ciphertext changes, so it is read anew.
      await writer.set('central-account', 'second');
      expect(await daemon.get('central-account')).toBe('second');
      expect(derive.mock.calls.length).toBeGreaterThan(afterFirst);
      await writer.remove('central-account');
      expect(await daemon.get('central-account')).toBeUndefined();
    } finally {
      derive.mockRestore();
    }
  });

  it('is off by default: a command decrypts each read', async () => {
    const k = keyring();
    await k.set('p', 'v');
    const derive = vi.spyOn(globalThis.crypto.subtle, 'deriveBits');
    try {
      await k.get('p');
      const once = derive.mock.calls.length;
      await k.get('p');
      expect(derive.mock.calls.length).toBe(2 * once);
    } finally {
      derive.mockRestore();
    }
  });
});
