import { promises as nodeFs } from 'node:fs';
import { join, sep } from 'node:path';
import { VaultError } from '../../errors.js';
import type { Keyring } from '../keyring.js';
import { writeAtomically, syncDirectory } from './atomicWrite.js';
import { DecryptedCache } from './decryptedCache.js';
import { fileKeyringFileName, keyForFileName, usableFileName } from './fileNames.js';
import { describeFsError, errnoOf, type FileKeyringFs } from './fileSystem.js';
import { passphraseAgainstNewestItems } from './firstWriteCheck.js';
import { decryptItem, encryptItem, FILE_KEYRING_MAX_PBES2_COUNT, FILE_KEYRING_PBES2_COUNT, hasJoseHeader, itemValue } from './itemJwe.js';
import { PrivateDirectory } from './privateDirectory.js';

export { FILE_KEYRING_MAX_PBES2_COUNT, FILE_KEYRING_PBES2_COUNT } from './itemJwe.js';
export type { FileKeyringFs } from './fileSystem.js';

/**
 * The `file` backend: one encrypted file per item, in the same on-disk format as aws-vault's file
 * backend (github.com/99designs/keyring `file.go`), so a directory written by either tool is read
 * by the other. This class coordinates; each job has a file of its own next to it:
 *
 * - fileNames.ts: the file name of a key (aws-vault's percent-encoding), and back
 * - itemJwe.ts: an item's JWE (PBES2-HS256+A128KW / A256GCM) and the Go JSON inside it
 * - passphraseForensics.ts: a wrong passphrase told from a damaged file
 * - firstWriteCheck.ts: the passphrase checked against existing items before the first write
 * - atomicWrite.ts: temp file, fsync, rename, fsync the directory
 * - privateDirectory.ts: the directory created, or tightened, to 0700
 * - decryptedCache.ts: what a daemon has decrypted, by exact ciphertext
 *
 * What this backend adds over aws-vault's: atomic writes, a 0700 directory enforced on first use,
 * a much higher PBES2 count for what it writes, errors that tell a wrong passphrase from a damaged
 * file, and a passphrase check before the first write so a mistyped passphrase cannot leave items
 * that open with different passphrases.
 */

const encoder = new TextEncoder();

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
   * daemon): see DecryptedCache.
   */
  rememberDecrypted?: boolean;
}

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
  private readonly directory: PrivateDirectory;
  private passphrasePromise: Promise<Uint8Array> | undefined;
  private writeCheck: Promise<void> | undefined;
  /** Set once an item decrypted with the passphrase: writes need no further check. */
  private passphraseConfirmed = false;
  /** When rememberDecrypted is on. */
  private readonly remembered: DecryptedCache | undefined;

  constructor(options: FileKeyringOptions) {
    this.dir = options.dir;
    this.askPassphrase = options.passphrase;
    this.homeDir = options.homeDir;
    this.pbes2Count = options.pbes2Count ?? FILE_KEYRING_PBES2_COUNT;
    this.maxPbes2Count = Math.max(options.maxPbes2Count ?? FILE_KEYRING_MAX_PBES2_COUNT, this.pbes2Count);
    this.platform = options.platform ?? process.platform;
    this.fs = { ...nodeFs, ...options.fs } as FileKeyringFs;
    this.now = options.now ?? (() => new Date());
    this.remembered = options.rememberDecrypted ? new DecryptedCache() : undefined;
    this.directory = new PrivateDirectory(this.dir, this.fs, this.platform, this.display());
    if (!Number.isSafeInteger(this.pbes2Count) || this.pbes2Count < 1000) {
      throw new VaultError('USAGE', `the file keyring PBES2 count must be an integer of at least 1000, got ${this.pbes2Count}`);
    }
  }

  async get(key: string): Promise<string | undefined> {
    const name = usableFileName(key);
    if (name === undefined) return undefined;
    if (!(await this.directory.ensure(false))) return undefined;
    let content: string;
    try {
      content = await this.fs.readFile(join(this.dir, name), 'utf8');
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
    const token = content.trim();
    const known = this.remembered?.get(name, token);
    if (known !== undefined) return known;
    const passphrase = await this.passphrase();
    const result = await decryptItem(token, passphrase, this.maxPbes2Count);
    if (result.ok) {
      this.passphraseConfirmed = true;
      const item = itemValue(result.plaintext);
      if (!item.ok) throw this.corrupt(key, name, item.cause);
      this.remembered?.set(name, token, item.value);
      return item.value;
    }
    if (result.failure === 'bad-passphrase') throw this.badPassphrase(name);
    throw this.corrupt(key, name, result.cause);
  }

  async set(key: string, value: string, label?: string): Promise<void> {
    const name = usableFileName(key);
    if (name === undefined) {
      throw new VaultError('USAGE', `the key ${JSON.stringify(key)} cannot be stored in the file keyring (it makes no valid file name)`, {
        hint: 'use a shorter name made of ordinary characters',
      });
    }
    await this.directory.ensure(true);
    const passphrase = await this.passphrase();
    await this.checkPassphraseBeforeWrite(passphrase);
    const token = await encryptItem({ key, value, label }, passphrase, { pbes2Count: this.pbes2Count, now: this.now() });
    try {
      await writeAtomically(this.fs, this.dir, name, token, this.platform);
    } catch (cause) {
      throw new VaultError('KEYRING_WRITE', `could not write the file keyring item ${key} (${this.display(name)}): ${describeFsError(cause)}`, {
        hint: `the previous value, if any, is unchanged; check free space and permissions of ${this.display()}`,
        cause,
      });
    }
  }

  async remove(key: string): Promise<boolean> {
    const name = usableFileName(key);
    if (name === undefined) return false;
    if (!(await this.directory.ensure(false))) return false;
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
    await syncDirectory(this.fs, this.dir, this.platform);
    return true;
  }

  /**
   * The items in the directory, unescaped and sorted. Skipped: temp files, names the escaping
   * cannot produce, anything that is not a regular file, and files that do not start with a JOSE
   * header (a README, `.DS_Store`). A damaged item whose header survived is listed, so the person
   * sees it and `get` reports it as corrupt.
   */
  async keys(): Promise<string[]> {
    if (!(await this.directory.ensure(false))) return [];
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
      return hasJoseHeader(await this.fs.readFile(path, 'utf8'));
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

  /** Before the first write of this instance, unless a read already proved the passphrase (see firstWriteCheck.ts). */
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
    const names = (await this.keys()).map(fileKeyringFileName);
    const outcome = await passphraseAgainstNewestItems(this.fs, this.dir, names, passphrase, this.maxPbes2Count);
    if (typeof outcome === 'object') {
      throw new VaultError('KEYRING_BAD_PASSPHRASE', `file keyring passphrase is wrong for ${this.display(outcome.refusedBy)}; nothing was written`, {
        hint: `use the passphrase the items in ${this.display()} were stored with (AWS_VAULT_FILE_PASSPHRASE or the prompt)`,
      });
    }
    this.passphraseConfirmed = true;
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
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
