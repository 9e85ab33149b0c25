import type { Stats } from 'node:fs';
import { VaultError } from '../../errors.js';
import { describeFsError, errnoOf, type FileKeyringFs } from './fileSystem.js';

/**
 * The directory policy of the file backend: the directory exists (when asked to create it) and is
 * private. A directory that already exists with group/other permission bits is tightened to 0700
 * rather than refused: it is ours (aws-vault and vault create it 0700), the names in it reveal
 * profile names and session lifetimes, and anyone with write access to it could delete or swap
 * items. Only when it cannot be tightened (not the owner) is it refused, naming the command that
 * fixes it.
 */
export class PrivateDirectory {
  private checked = false;

  constructor(
    private readonly dir: string,
    private readonly fs: FileKeyringFs,
    private readonly platform: NodeJS.Platform,
    /** How the directory is named in messages (`~/.awsvault/keys`). */
    private readonly shown: string,
  ) {}

  /** Returns false when the directory does not exist and `create` is false. */
  async ensure(create: boolean): Promise<boolean> {
    if (this.checked) return true;
    // Not memoised as a promise: concurrent first calls each check, and mkdir -p / chmod are idempotent.
    const exists = await this.ensureNow(create);
    if (exists) this.checked = true;
    return exists;
  }

  private async ensureNow(create: boolean): Promise<boolean> {
    let stats: Stats;
    try {
      stats = await this.fs.stat(this.dir);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') {
        throw new VaultError('KEYRING_UNAVAILABLE', `cannot use the file keyring directory ${this.shown}: ${describeFsError(error)}`, {
          hint: 'set AWS_VAULT_FILE_DIR to a directory you own',
          cause: error,
        });
      }
      if (!create) return false;
      try {
        await this.fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
        if (this.platform !== 'win32') await this.fs.chmod(this.dir, 0o700);
      } catch (cause) {
        throw new VaultError('KEYRING_WRITE', `could not create the file keyring directory ${this.shown}: ${describeFsError(cause)}`, {
          hint: 'set AWS_VAULT_FILE_DIR to a writable directory',
          cause,
        });
      }
      return true;
    }
    if (!stats.isDirectory()) {
      throw new VaultError('KEYRING_UNAVAILABLE', `the file keyring path ${this.shown} is not a directory`, {
        hint: 'move it away or set AWS_VAULT_FILE_DIR to a directory',
      });
    }
    if (this.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
      try {
        await this.fs.chmod(this.dir, 0o700);
      } catch (cause) {
        const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
        throw new VaultError('KEYRING_UNAVAILABLE', `the file keyring directory ${this.shown} is open to other users (mode ${mode}) and could not be made private: ${describeFsError(cause)}`, {
          hint: `run \`chmod 700 ${this.shown}\` as its owner`,
          cause,
        });
      }
    }
    return true;
  }
}
