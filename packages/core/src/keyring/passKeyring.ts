import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { delimiter, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { VaultError } from '../errors.js';
import { decodeAwsVaultItem, encodeAwsVaultItem, NotAnAwsVaultItem } from './awsVaultItem.js';
import { oneLine } from './keychainRemedy.js';
import type { Keyring } from './keyring.js';

/**
 * The `pass` backend: one gpg-encrypted entry per item in a password store (passwordstore.org),
 * read and written through the `pass` program, laid out as aws-vault's pass backend
 * (github.com/99designs/keyring `pass.go`) lays it out, so a store aws-vault filled is read as is:
 *
 * - entry name = `PREFIX/KEY` (AWS_VAULT_PASS_PREFIX, empty by default), file `DIR/PREFIX/KEY.gpg`;
 * - entry content = Go's `json.Marshal(keyring.Item)` (`Data` is the base64 of the value's bytes),
 *   the same item the file backend encrypts;
 * - the store is AWS_VAULT_PASS_PASSWORD_STORE_DIR, else PASSWORD_STORE_DIR, else ~/.password-store,
 *   handed to `pass` as PASSWORD_STORE_DIR; the program is AWS_VAULT_PASS_CMD, else `pass`.
 *
 * Values reach `pass insert` on its standard input, never as an argument. What vault adds over
 * aws-vault's: a write that fails puts the entry's previous file back, and pass's and gpg's errors
 * become one line with the remedy.
 */
export interface PassKeyringOptions {
  /** The password store directory. */
  dir: string;
  /** The pass program (a name looked up on PATH, or a path). */
  command: string;
  /** Folder inside the store the entries live in ('' for the top). */
  prefix: string;
  /** The environment `pass` runs with (vault's own secrets already removed). */
  env: NodeJS.ProcessEnv;
}

export interface PassSettings {
  dir?: string;
  command?: string;
  prefix?: string;
}

interface PassResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

const INIT_REMEDY = 'run `pass init GPG-KEY-ID` for that store (generate a key with `gpg --quick-gen-key`), or choose another with --pass-dir (AWS_VAULT_PASS_PASSWORD_STORE_DIR)';

/** The store settings from flags, then aws-vault's variables, then pass's own defaults. */
export function passOptions(settings: PassSettings, env: NodeJS.ProcessEnv, homeDir: string): PassKeyringOptions {
  const expand = (dir: string) => {
    if (dir === '~') return homeDir;
    if (dir.startsWith('~/')) return join(homeDir, dir.slice(2));
    return isAbsolute(dir) ? dir : resolve(dir);
  };
  const dir = settings.dir || env.AWS_VAULT_PASS_PASSWORD_STORE_DIR || env.PASSWORD_STORE_DIR || join(homeDir, '.password-store');
  const prefix = (settings.prefix ?? env.AWS_VAULT_PASS_PREFIX ?? '').replace(/^\/+|\/+$/g, '');
  return { dir: expand(dir), command: settings.command || env.AWS_VAULT_PASS_CMD || 'pass', prefix, env };
}

export class PassKeyring implements Keyring {
  readonly backend = 'pass';

  constructor(private readonly options: PassKeyringOptions) {}

  /** Fails, with the remedy, when the pass program cannot be found (as aws-vault does on open). */
  async ready(): Promise<void> {
    if (!(await this.findCommand())) {
      throw new VaultError('KEYRING_UNAVAILABLE', `the pass program "${this.options.command}" was not found`, {
        hint: 'install pass (Debian: apt-get install pass), or name it with --pass-cmd (AWS_VAULT_PASS_CMD)',
      });
    }
  }

  async get(key: string): Promise<string | undefined> {
    const file = this.fileOf(key);
    if (!(await exists(file))) return undefined;
    const result = await this.pass(['show', this.entryOf(key)]);
    if (result.code !== 0) throw this.failure('read', key, result);
    try {
      return decodeAwsVaultItem(result.stdout);
    } catch (error) {
      throw new VaultError('KEYRING_CORRUPT', `the pass entry ${this.entryOf(key)} is not an aws-vault item`, {
        hint: 'remove it with `pass rm` and store the key again with `vault add`',
        cause: error instanceof NotAnAwsVaultItem ? error.cause : error,
      });
    }
  }

  async set(key: string, value: string, label?: string): Promise<void> {
    checkKey(key);
    const file = this.fileOf(key);
    // pass has gpg write the entry in place: keep the old file so a failed write can put it back.
    const previous = await fs.readFile(file).catch(() => undefined);
    const result = await this.pass(['insert', '--multiline', '--force', this.entryOf(key)], encodeAwsVaultItem(key, value, label));
    if (result.code !== 0) {
      await restore(file, previous);
      throw this.failure('write', key, result);
    }
  }

  async remove(key: string): Promise<boolean> {
    if (!(await exists(this.fileOf(key)))) return false;
    const result = await this.pass(['rm', '--force', this.entryOf(key)]);
    if (result.code !== 0) throw this.failure('remove', key, result);
    return true;
  }

  async keys(): Promise<string[]> {
    const top = join(this.options.dir, this.options.prefix);
    const found: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw new VaultError('KEYRING_UNAVAILABLE', `cannot list the pass store ${top}`, { hint: 'check that it is a directory you can read', cause: error });
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        // .git and .gpg-id belong to pass, not to vault.
        if (entry.isDirectory() && !entry.name.startsWith('.')) await walk(path);
        else if (entry.isFile() && entry.name.endsWith('.gpg')) found.push(relative(top, path).slice(0, -'.gpg'.length).split(sep).join('/'));
      }
    };
    await walk(top);
    return found.sort();
  }

  private entryOf(key: string): string {
    return this.options.prefix === '' ? key : `${this.options.prefix}/${key}`;
  }

  private fileOf(key: string): string {
    return join(this.options.dir, this.options.prefix, `${key}.gpg`);
  }

  private failure(action: 'read' | 'write' | 'remove', key: string, result: PassResult): VaultError {
    const said = oneLine(result.stderr);
    const where = `the pass store ${this.options.dir}`;
    if (/pass init|No public key|unusable public key|no valid OpenPGP|encryption failed|No secret key|gpg-id/i.test(said)) {
      const missing = action === 'read' ? 'gpg secret key for it' : 'usable gpg key to encrypt to';
      return new VaultError(action === 'read' ? 'KEYRING_LOCKED' : 'KEYRING_UNAVAILABLE', `cannot ${action} pass entry ${this.entryOf(key)}: ${where} has no ${missing}`, {
        hint: action === 'read' ? 'import the gpg key the store was initialised with (see its .gpg-id), or check GNUPGHOME' : INIT_REMEDY,
      });
    }
    return new VaultError(action === 'write' ? 'KEYRING_WRITE' : 'KEYRING_UNAVAILABLE', `pass could not ${action} ${this.entryOf(key)} in ${where}${said ? ` (${said})` : ''}`, {
      hint: action === 'write' ? 'nothing stored before was changed; fix what pass reported and try again' : 'fix what pass reported and try again',
    });
  }

  private async findCommand(): Promise<boolean> {
    const command = this.options.command;
    if (command.includes('/')) return isExecutable(command);
    for (const dir of (this.options.env.PATH ?? '').split(delimiter)) if (dir && (await isExecutable(join(dir, command)))) return true;
    return false;
  }

  private pass(args: string[], input?: string): Promise<PassResult> {
    return new Promise((resolvePass, reject) => {
      const child = spawn(this.options.command, args, {
        env: { ...passEnvironment(this.options.env), PASSWORD_STORE_DIR: this.options.dir },
        // stdin carries the entry on insert; gpg asks for a key's passphrase through its own
        // pinentry (GPG_TTY), never on these pipes.
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => {
        if (err.length < 4096) err += chunk.toString('utf8');
      });
      child.on('error', (cause) =>
        reject(new VaultError('KEYRING_UNAVAILABLE', `the pass program "${this.options.command}" could not be started`, {
          hint: 'install pass (Debian: apt-get install pass), or name it with --pass-cmd (AWS_VAULT_PASS_CMD)',
          cause,
        })),
      );
      child.on('close', (code) => resolvePass({ code, stdout: Buffer.concat(out), stderr: err }));
      child.stdin.on('error', () => undefined); // pass may exit before reading (an uninitialised store)
      child.stdin.end(input ?? '');
    });
  }
}

/** Puts back the entry file as it was before a failed insert (temp file + rename: never half written). */
async function restore(file: string, previous: Buffer | undefined): Promise<void> {
  const now = await fs.readFile(file).catch(() => undefined);
  if (previous === undefined) {
    if (now !== undefined) await fs.rm(file, { force: true }).catch(() => undefined);
    return;
  }
  if (now !== undefined && now.equals(previous)) return;
  const temp = `${file}.vault-restore-${process.pid}`;
  try {
    await fs.writeFile(temp, previous, { mode: 0o600 });
    await fs.rename(temp, file);
  } catch {
    await fs.rm(temp, { force: true }).catch(() => undefined);
  }
}

/**
 * What pass and gpg are started with: the person's environment without any AWS_ variable — pass
 * needs none, and `vault add --env` is handed the long-term key in AWS_SECRET_ACCESS_KEY.
 */
export function passEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.toUpperCase().startsWith('AWS_')));
}

function checkKey(key: string): void {
  if (key === '' || key.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new VaultError('USAGE', `the key ${JSON.stringify(key)} cannot be a pass entry name`, { hint: 'use a name without empty, "." or ".." parts' });
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then((s) => s.isFile(), () => false);
}

async function isExecutable(file: string): Promise<boolean> {
  return fs.access(file, 1).then(() => true, () => false);
}
