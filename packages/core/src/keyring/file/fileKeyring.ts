import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as nodeFs } from 'node:fs';
import type { Stats } from 'node:fs';
import { join, sep } from 'node:path';
import { VaultError } from '../../errors.js';
import { fileKeyringFileName, keyForFileName, TEMP_PREFIX, usableFileName } from './fileNames.js';
import { decodeAwsVaultItem, encodeAwsVaultItem, NotAnAwsVaultItem } from '../awsVaultItem.js';
import type { Keyring } from '../keyring.js';

/**
 * jose is imported on first use: it is ~45 modules, and a command on the keychain backend (or a
 * file-backend command answered by the daemon) never encrypts or decrypts anything.
 */
let josePromise: Promise<typeof import('jose')> | undefined;
const jose = () => (josePromise ??= import('jose'));

/**
 * The `file` backend: one encrypted file per item, in the same on-disk format as aws-vault's file
 * backend (github.com/99designs/keyring `file.go`), so a directory written by either tool is read
 * by the other:
 *
 * - file name = the key, percent-encoded the way `percent.Encode(key, "/")` does it
 *   (github.com/mtibben/percent): only `/` and `%` become `%2F` / `%25` (upper-case hex, per UTF-8
 *   byte); everything else, spaces, commas and non-ASCII included, is kept as is.
 * - file content = a JWE in compact serialization (jose2go `jose.Encrypt`): alg
 *   `PBES2-HS256+A128KW`, enc `A256GCM`, the protected header carries `p2c`/`p2s` and a
 *   free-form `created` timestamp (Go's `time.Now().String()`). aws-vault writes p2c = 8192
 *   (jose2go's default) with a 12-byte salt.
 * - plaintext = Go's `json.Marshal(keyring.Item)`:
 *   `{"Key":…,"Data":<base64 of the bytes>,"Label":…,"Description":…,
 *     "KeychainNotTrustApplication":false,"KeychainNotSynchronizable":false}`.
 *   The Keyring stores strings: `Data` holds the UTF-8 bytes of the value, so what aws-vault
 *   stored (its JSON) reads back as that JSON string.
 *
 * What this backend adds over aws-vault's: atomic writes (temp file, fsync, rename, fsync dir),
 * a 0700 directory enforced on first use, a much higher PBES2 count for what it writes, errors that
 * tell a wrong passphrase from a damaged file, and a passphrase check before the first write so a
 * mistyped passphrase cannot leave items that open with different passphrases.
 */

/**
 * PBES2 iteration count (PBKDF2-HMAC-SHA256) for the items this backend writes.
 *
 * Cost: every item read or written runs one derivation (each file has its own salt). Measured on
 * the 2-core AMD EPYC build machine with Node 20: 8,192 → 2.4 ms, 100,000 → 30 ms,
 * 310,000 → 95 ms, 600,000 → 170–190 ms, 1,300,000 → 360 ms. A `vault exec` with MFA reads two
 * items (the long-term key and the cached credentials), so 600,000 costs about 0.4 s per command;
 * `keys()`/`remove()` derive nothing.
 * Guessing resistance: an offline attacker with the files runs PBKDF2 once per guess per file.
 * A current GPU does on the order of 10^10 HMAC-SHA256 iterations/s, i.e. ~10^6 guesses/s
 * against aws-vault's 8,192 but ~1.5·10^4 guesses/s against 600,000 — 73× more work, which is
 * what OWASP's 2023 guidance asks of PBKDF2-HMAC-SHA256.
 * Compatibility: jose2go ≥ 1.6 (what newer aws-vault builds link) refuses p2c above 1,300,000 for
 * this alg, so we stay well under it; aws-vault's 8,192-count files stay readable (the read limit
 * below is independent of this value).
 */
export const FILE_KEYRING_PBES2_COUNT = 600_000;

/**
 * The highest p2c accepted when reading: jose2go's own cap for PBES2-HS256+A128KW. A bound is
 * needed because p2c comes from the file: a planted file with p2c = 2^31 would otherwise stall
 * every read for hours.
 */
export const FILE_KEYRING_MAX_PBES2_COUNT = 1_300_000;

const ALG = 'PBES2-HS256+A128KW';
const ENC = 'A256GCM';
const READ_ALGS = ['PBES2-HS256+A128KW', 'PBES2-HS384+A192KW', 'PBES2-HS512+A256KW'];

const encoder = new TextEncoder();

/** The subset of `node:fs/promises` the backend uses; tests replace parts of it to inject failures. */
export interface FileKeyringFs {
  open: typeof nodeFs.open;
  rename: typeof nodeFs.rename;
  unlink: typeof nodeFs.unlink;
  mkdir: typeof nodeFs.mkdir;
  chmod: typeof nodeFs.chmod;
  stat: typeof nodeFs.stat;
  readdir: typeof nodeFs.readdir;
  readFile: typeof nodeFs.readFile;
}

export interface FileKeyringOptions {
  /** The resolved directory (see `defaultFileDir`); created 0700 on first write. */
  dir: string;
  /** Asked at most once per keyring instance, and only when an item has to be decrypted or encrypted. */
  passphrase: () => Promise<string>;
  /** For messages only: `dir` is shown with this prefix abbreviated to `~`. */
  homeDir?: string;
  /** PBES2 count for new items; defaults to FILE_KEYRING_PBES2_COUNT. */
  pbes2Count?: number;
  /** Highest PBES2 count accepted when reading; defaults to FILE_KEYRING_MAX_PBES2_COUNT. */
  maxPbes2Count?: number;
  platform?: NodeJS.Platform;
  fs?: Partial<FileKeyringFs>;
  now?: () => Date;
  /**
   * Keep what was decrypted, keyed by the exact ciphertext read, for a long-running process (the
   * daemon): each item's KDF is then paid once per login instead of once per read, and any write —
   * by this process or another — changes the ciphertext, so a stale value is never returned.
   */
  rememberDecrypted?: boolean;
}

/** Items a daemon remembers at most (each a few hundred bytes); the oldest is forgotten first. */
const REMEMBERED_MAX = 256;

/** Go's `time.Now().String()` shape, in UTC: `2006-01-02 15:04:05.123 +0000 UTC` (jose2go ignores it). */
function goTimeString(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const ms = date.getUTCMilliseconds();
  const fraction = ms === 0 ? '' : '.' + p(ms, 3).replace(/0+$/, '');
  return `${date.getUTCFullYear()}-${p(date.getUTCMonth() + 1)}-${p(date.getUTCDate())} ${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())}${fraction} +0000 UTC`;
}

function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** `ENOSPC (no space left on device)`: the fs error without its path-laden message. */
function describeFsError(error: unknown): string {
  const code = errnoOf(error);
  const text: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EISDIR: 'a directory is in the way',
    ENOTDIR: 'a path component is not a directory',
    ENOTEMPTY: 'a directory is in the way',
    EEXIST: 'already exists',
    EIO: 'I/O error',
    EMFILE: 'too many open files',
    ENAMETOOLONG: 'file name too long',
  };
  if (code) return text[code] ? `${code} (${text[code]})` : code;
  return error instanceof Error ? error.message.split('\n')[0]! : String(error);
}

type DecryptFailure = 'bad-passphrase' | 'corrupt';

export class FileKeyring implements Keyring {
  readonly backend = 'file';
  readonly dir: string;
  private readonly askPassphrase: () => Promise<string>;
  private readonly homeDir: string | undefined;
  private readonly pbes2Count: number;
  private readonly maxPbes2Count: number;
  private readonly platform: NodeJS.Platform;
  private readonly fs: FileKeyringFs;
  private readonly now: () => Date;
  private passphrasePromise: Promise<Uint8Array> | undefined;
  private dirOk = false;
  private writeCheck: Promise<void> | undefined;
  /** Set once an item decrypted with the passphrase: writes need no further check. */
  private passphraseConfirmed = false;
  /** `file name + ciphertext` → value, when rememberDecrypted is on. */
  private readonly remembered: Map<string, string> | undefined;

  constructor(options: FileKeyringOptions) {
    this.dir = options.dir;
    this.askPassphrase = options.passphrase;
    this.homeDir = options.homeDir;
    this.pbes2Count = options.pbes2Count ?? FILE_KEYRING_PBES2_COUNT;
    this.maxPbes2Count = Math.max(options.maxPbes2Count ?? FILE_KEYRING_MAX_PBES2_COUNT, this.pbes2Count);
    this.platform = options.platform ?? process.platform;
    this.fs = { ...nodeFs, ...options.fs } as FileKeyringFs;
    this.now = options.now ?? (() => new Date());
    this.remembered = options.rememberDecrypted ? new Map() : undefined;
    if (!Number.isSafeInteger(this.pbes2Count) || this.pbes2Count < 1000) {
      throw new VaultError('USAGE', `the file keyring PBES2 count must be an integer of at least 1000, got ${this.pbes2Count}`);
    }
  }

  async get(key: string): Promise<string | undefined> {
    const name = usableFileName(key);
    if (name === undefined) return undefined;
    if (!(await this.ensureDir(false))) return undefined;
    let token: string;
    try {
      token = await this.fs.readFile(join(this.dir, name), 'utf8');
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      if (code === 'EISDIR') {
        throw new VaultError('KEYRING_CORRUPT', `the file keyring item ${key} (${this.display(name)}) is a directory, not an item`, {
          hint: `move it out of ${this.display()}`,
        });
      }
      throw new VaultError('KEYRING_UNAVAILABLE', `cannot read the file keyring item ${key} (${this.display(name)}): ${describeFsError(error)}`, {
        hint: `check the permissions of ${this.display()}`,
        cause: error,
      });
    }
    const memo = this.remembered === undefined ? undefined : `${name}\n${token.trim()}`;
    const known = memo === undefined ? undefined : this.remembered!.get(memo);
    if (known !== undefined) return known;
    const passphrase = await this.passphrase();
    const result = await this.decrypt(token.trim(), passphrase);
    if (result.ok) {
      this.passphraseConfirmed = true;
      const value = this.valueOf(result.plaintext, key, name);
      if (memo !== undefined) this.remember(memo, value);
      return value;
    }
    if (result.failure === 'bad-passphrase') throw this.badPassphrase(name);
    throw this.corrupt(key, name, result.cause);
  }

  private remember(memo: string, value: string): void {
    const remembered = this.remembered!;
    if (remembered.size >= REMEMBERED_MAX) remembered.delete(remembered.keys().next().value!);
    remembered.set(memo, value);
  }

  async set(key: string, value: string, label?: string): Promise<void> {
    const name = usableFileName(key);
    if (name === undefined) {
      throw new VaultError('USAGE', `the key ${JSON.stringify(key)} cannot be stored in the file keyring (it makes no valid file name)`, {
        hint: 'use a shorter name made of ordinary characters',
      });
    }
    await this.ensureDir(true);
    const passphrase = await this.passphrase();
    await this.checkPassphraseBeforeWrite(passphrase);
    const { CompactEncrypt } = await jose();
    const token = await new CompactEncrypt(encoder.encode(encodeAwsVaultItem(key, value, label)))
      .setProtectedHeader({ alg: ALG, enc: ENC, created: goTimeString(this.now()) })
      .setKeyManagementParameters({ p2c: this.pbes2Count, p2s: randomBytes(16) })
      .encrypt(passphrase);
    await this.writeAtomically(key, name, token);
  }

  async remove(key: string): Promise<boolean> {
    const name = usableFileName(key);
    if (name === undefined) return false;
    if (!(await this.ensureDir(false))) return false;
    try {
      await this.fs.unlink(join(this.dir, name));
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'ENOENT') return false;
      throw new VaultError('KEYRING_WRITE', `could not remove the file keyring item ${key} (${this.display(name)}): ${describeFsError(error)}`, {
        hint: `check the permissions of ${this.display()}`,
        cause: error,
      });
    }
    await this.syncDir();
    return true;
  }

  /**
   * The items in the directory, unescaped and sorted. Skipped: temp files, names the escaping
   * cannot produce, anything that is not a regular file, and files that do not start with a JOSE
   * header (a README, `.DS_Store`). A damaged item whose header survived is listed, so the person
   * sees it and `get` reports it as corrupt.
   */
  async keys(): Promise<string[]> {
    if (!(await this.ensureDir(false))) return [];
    let entries: string[];
    try {
      entries = await this.fs.readdir(this.dir);
    } catch (error) {
      throw new VaultError('KEYRING_UNAVAILABLE', `cannot list the file keyring ${this.display()}: ${describeFsError(error)}`, {
        hint: `check the permissions of ${this.display()}`,
        cause: error,
      });
    }
    const candidates = entries
      .map((fileName) => ({ fileName, key: keyForFileName(fileName) }))
      .filter((entry): entry is { fileName: string; key: string } => entry.key !== undefined);
    const keys: string[] = [];
    await forEachLimited(candidates, 16, async ({ fileName, key }) => {
      if (await this.looksLikeItem(join(this.dir, fileName))) keys.push(key);
    });
    return keys.sort();
  }

  private async looksLikeItem(path: string): Promise<boolean> {
    try {
      const stats = await this.fs.stat(path);
      if (!stats.isFile() || stats.size > 1 << 20) return false;
      const content = await this.fs.readFile(path, 'utf8');
      const header = JSON.parse(Buffer.from(content.trim().split('.', 1)[0]!, 'base64url').toString('utf8')) as unknown;
      return typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string';
    } catch {
      return false;
    }
  }

  private display(fileName?: string): string {
    let dir = this.dir;
    const home = this.homeDir?.replace(/[\\/]+$/, '');
    if (home && (dir === home || dir.startsWith(home + sep))) dir = '~' + dir.slice(home.length);
    return fileName === undefined ? dir : join(dir, fileName);
  }

  private passphrase(): Promise<Uint8Array> {
    if (!this.passphrasePromise) {
      const pending = Promise.resolve()
        .then(() => this.askPassphrase())
        .then((text) => encoder.encode(text));
      // A failed prompt (Ctrl-C, no terminal) may be retried; a passphrase once given is kept.
      pending.catch(() => {
        if (this.passphrasePromise === pending) this.passphrasePromise = undefined;
      });
      this.passphrasePromise = pending;
    }
    return this.passphrasePromise;
  }

  /**
   * Makes sure the directory exists (when `create`) and is private. A directory that already
   * exists with group/other permission bits is tightened to 0700 rather than refused: it is ours
   * (aws-vault and vault create it 0700), the names in it reveal profile names and session
   * lifetimes, and anyone with write access to it could delete or swap items. Only when it cannot
   * be tightened (not the owner) do we refuse, naming the command that fixes it.
   * Returns false when the directory does not exist and `create` is false.
   */
  private async ensureDir(create: boolean): Promise<boolean> {
    if (this.dirOk) return true;
    // Not memoised as a promise: concurrent first calls each check, and mkdir -p / chmod are idempotent.
    const exists = await this.ensureDirNow(create);
    if (exists) this.dirOk = true;
    return exists;
  }

  private async ensureDirNow(create: boolean): Promise<boolean> {
    let stats: Stats;
    try {
      stats = await this.fs.stat(this.dir);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') {
        throw new VaultError('KEYRING_UNAVAILABLE', `cannot use the file keyring directory ${this.display()}: ${describeFsError(error)}`, {
          hint: 'set AWS_VAULT_FILE_DIR to a directory you own',
          cause: error,
        });
      }
      if (!create) return false;
      try {
        await this.fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
        if (this.platform !== 'win32') await this.fs.chmod(this.dir, 0o700);
      } catch (cause) {
        throw new VaultError('KEYRING_WRITE', `could not create the file keyring directory ${this.display()}: ${describeFsError(cause)}`, {
          hint: 'set AWS_VAULT_FILE_DIR to a writable directory',
          cause,
        });
      }
      return true;
    }
    if (!stats.isDirectory()) {
      throw new VaultError('KEYRING_UNAVAILABLE', `the file keyring path ${this.display()} is not a directory`, {
        hint: 'move it away or set AWS_VAULT_FILE_DIR to a directory',
      });
    }
    if (this.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
      try {
        await this.fs.chmod(this.dir, 0o700);
      } catch (cause) {
        const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
        throw new VaultError('KEYRING_UNAVAILABLE', `the file keyring directory ${this.display()} is open to other users (mode ${mode}) and could not be made private: ${describeFsError(cause)}`, {
          hint: `run \`chmod 700 ${this.display()}\` as its owner`,
          cause,
        });
      }
    }
    return true;
  }

  /**
   * Before the first write of this instance, unless a read already proved the passphrase: if the
   * directory holds items, the passphrase must open at least one of the (up to three) most
   * recently written ones. Otherwise a typo at the prompt would store items nothing else opens.
   */
  private checkPassphraseBeforeWrite(passphrase: Uint8Array): Promise<void> {
    if (this.passphraseConfirmed) return Promise.resolve();
    if (!this.writeCheck) {
      const pending = this.runWriteCheck(passphrase);
      pending.catch(() => {
        if (this.writeCheck === pending) this.writeCheck = undefined;
      });
      this.writeCheck = pending;
    }
    return this.writeCheck;
  }

  private async runWriteCheck(passphrase: Uint8Array): Promise<void> {
    const dated: { name: string; mtime: number }[] = [];
    for (const key of await this.keys()) {
      const name = fileKeyringFileName(key);
      try {
        dated.push({ name, mtime: (await this.fs.stat(join(this.dir, name))).mtimeMs });
      } catch {
        // gone meanwhile
      }
    }
    dated.sort((a, b) => b.mtime - a.mtime);
    let refusedBy: string | undefined;
    for (const { name } of dated.slice(0, 3)) {
      let token: string;
      try {
        token = await this.fs.readFile(join(this.dir, name), 'utf8');
      } catch {
        continue;
      }
      const result = await this.decrypt(token.trim(), passphrase);
      if (result.ok) {
        this.passphraseConfirmed = true;
        return;
      }
      if (result.failure === 'bad-passphrase') refusedBy ??= name;
    }
    if (refusedBy !== undefined) {
      throw new VaultError('KEYRING_BAD_PASSPHRASE', `file keyring passphrase is wrong for ${this.display(refusedBy)}; nothing was written`, {
        hint: `use the passphrase the items in ${this.display()} were stored with (AWS_VAULT_FILE_PASSPHRASE or the prompt)`,
      });
    }
    this.passphraseConfirmed = true;
  }

  private async decrypt(
    token: string,
    passphrase: Uint8Array,
  ): Promise<{ ok: true; plaintext: Uint8Array } | { ok: false; failure: DecryptFailure; cause?: unknown }> {
    const { compactDecrypt, errors: joseErrors } = await jose();
    try {
      const { plaintext } = await compactDecrypt(token, passphrase, {
        keyManagementAlgorithms: READ_ALGS,
        maxPBES2Count: this.maxPbes2Count,
      });
      return { ok: true, plaintext };
    } catch (cause) {
      if (!(cause instanceof joseErrors.JWEDecryptionFailed)) return { ok: false, failure: 'corrupt', cause };
      // jose does not say whether the key unwrap or the content decryption failed. Unwrap the CEK
      // ourselves: AES-KW's integrity check fails for a wrong passphrase (or a damaged wrapped key,
      // which nothing can tell apart), while a damaged header, IV, ciphertext or tag leaves the
      // unwrap intact and only breaks the GCM tag.
      return { ok: false, failure: (await unwrapsWith(token, passphrase)) ? 'corrupt' : 'bad-passphrase', cause };
    }
  }

  private valueOf(plaintext: Uint8Array, key: string, name: string): string {
    try {
      return decodeAwsVaultItem(plaintext);
    } catch (error) {
      throw this.corrupt(key, name, error instanceof NotAnAwsVaultItem ? error.cause : error);
    }
  }


  private badPassphrase(name: string): VaultError {
    return new VaultError('KEYRING_BAD_PASSPHRASE', `file keyring passphrase is wrong for ${this.display(name)}`, {
      hint: 'use the passphrase the item was stored with (AWS_VAULT_FILE_PASSPHRASE or the prompt); vault and aws-vault share these files',
    });
  }

  private corrupt(key: string, name: string, cause?: unknown): VaultError {
    return new VaultError('KEYRING_CORRUPT', `the file keyring item ${key} (${this.display(name)}) is damaged and cannot be decrypted`, {
      hint: `other items are unaffected; remove it (\`vault remove ${key}\` or delete the file) and store it again`,
      ...(cause === undefined ? {} : { cause }),
    });
  }

  /** Temp file in the same directory (0600, exclusive create), fsync, rename over the item, fsync the directory. */
  private async writeAtomically(key: string, name: string, token: string): Promise<void> {
    const tempPath = join(this.dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    const finalPath = join(this.dir, name);
    let created = false;
    try {
      const handle = await this.fs.open(tempPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      created = true;
      try {
        await handle.writeFile(token, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.fs.rename(tempPath, finalPath);
      created = false;
    } catch (cause) {
      if (created) await this.fs.unlink(tempPath).catch(() => undefined);
      throw new VaultError('KEYRING_WRITE', `could not write the file keyring item ${key} (${this.display(name)}): ${describeFsError(cause)}`, {
        hint: `the previous value, if any, is unchanged; check free space and permissions of ${this.display()}`,
        cause,
      });
    }
    await this.syncDir();
  }

  /**
   * Makes a rename or unlink durable. Best effort: the rename has already happened, so a failure
   * here must not be reported as a failed write (and Windows cannot open directories at all).
   */
  private async syncDir(): Promise<void> {
    if (this.platform === 'win32') return;
    let handle: Awaited<ReturnType<FileKeyringFs['open']>> | undefined;
    try {
      handle = await this.fs.open(this.dir, fsConstants.O_RDONLY);
      await handle.sync();
    } catch {
      // file systems without directory fsync (EINVAL), or a directory we may not open
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }
}

/** True when the passphrase unwraps the token's content key (see `decrypt`). */
async function unwrapsWith(token: string, passphrase: Uint8Array): Promise<boolean> {
  try {
    const [headerPart, wrappedPart] = token.split('.');
    const header = JSON.parse(Buffer.from(headerPart!, 'base64url').toString('utf8')) as { alg?: unknown; p2c?: unknown; p2s?: unknown };
    const alg = header.alg;
    if (typeof alg !== 'string' || !READ_ALGS.includes(alg) || typeof header.p2c !== 'number' || typeof header.p2s !== 'string') return true;
    const salt = Buffer.concat([Buffer.from(alg, 'utf8'), Buffer.of(0), Buffer.from(header.p2s, 'base64url')]);
    const base = await crypto.subtle.importKey('raw', passphrase, 'PBKDF2', false, ['deriveBits']);
    const bits = await crypto.subtle.deriveBits(
      { name: 'PBKDF2', hash: `SHA-${alg.slice(8, 11)}`, salt, iterations: header.p2c },
      base,
      parseInt(alg.slice(13, 16), 10),
    );
    const kek = await crypto.subtle.importKey('raw', bits, 'AES-KW', false, ['unwrapKey']);
    await crypto.subtle.unwrapKey('raw', Buffer.from(wrappedPart ?? '', 'base64url'), kek, 'AES-KW', { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
    return true;
  } catch {
    return false;
  }
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
