import { isAbsolute, join, resolve } from 'node:path';
import { VaultError } from '../errors.js';
import { FileKeyring } from './file/fileKeyring.js';
import type { Keyring } from './keyring.js';
import { KeytarKeyring, loadKeytar, type KeytarApi } from './keytarKeyring.js';
import { PassKeyring, passOptions, type PassSettings } from './passKeyring.js';

/** The backends vault implements. */
export type BackendName = 'keychain' | 'file' | 'pass';

/**
 * Names accepted for `--backend` / AWS_VAULT_BACKEND: aws-vault's names for the OS stores all mean
 * the keytar backend (keytar picks the store of the platform it runs on).
 */
const BACKEND_ALIASES: Record<string, BackendName> = {
  keychain: 'keychain',
  'secret-service': 'keychain',
  wincred: 'keychain',
  file: 'file',
  pass: 'pass',
};

/** aws-vault backends vault does not implement: named so the error can say so. */
const AWS_VAULT_ONLY = new Set(['kwallet', 'keyctl', 'op', 'op-connect', 'op-desktop']);

export const SUPPORTED_BACKENDS = Object.keys(BACKEND_ALIASES);

export interface ResolveBackendOptions {
  /** The `--backend` value, if given. */
  backend?: string;
  env: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  /** How keytar is loaded when choosing the default; defaults to `loadKeytar`. */
  loadKeytar?: () => Promise<KeytarApi>;
}

export interface OpenKeyringOptions extends ResolveBackendOptions {
  homeDir: string;
  /** For the file backend; asked lazily, at most once. */
  passphrase: () => Promise<string>;
  /** Bound on every keychain call (default 2000 ms). */
  keychainTimeoutMs?: number;
  /** File backend: `--file-dir` (else AWS_VAULT_FILE_DIR, else ~/.awsvault/keys). */
  fileDir?: string;
  /** Pass backend: `--pass-dir`, `--pass-cmd`, `--pass-prefix` (else their AWS_VAULT_PASS_* variables). */
  pass?: PassSettings;
  /** File backend: keep decrypted items in memory (the daemon; see FileKeyringOptions). */
  rememberDecrypted?: boolean;
}

/** Maps a backend name (ours or aws-vault's) to the backend, or throws a USAGE error listing what works. */
export function normalizeBackendName(name: string, source = '--backend'): BackendName {
  const backend = BACKEND_ALIASES[name.trim().toLowerCase()];
  if (backend) return backend;
  const supported = 'keychain (also secret-service, wincred), file or pass';
  if (AWS_VAULT_ONLY.has(name.trim().toLowerCase())) {
    throw new VaultError('USAGE', `the "${name}" keyring backend of aws-vault is not supported by vault (${source})`, {
      hint: `use ${supported}`,
    });
  }
  throw new VaultError('USAGE', `unknown keyring backend "${name}" (${source})`, { hint: `use ${supported}` });
}

/**
 * The backend to use: `--backend`, else AWS_VAULT_BACKEND, else the default — `keychain` where it
 * works (macOS and Windows when keytar loads; Linux when DBUS_SESSION_BUS_ADDRESS is set and keytar
 * loads), otherwise `file`.
 */
export async function resolveBackendName(options: ResolveBackendOptions): Promise<BackendName> {
  if (options.backend !== undefined && options.backend !== '') return normalizeBackendName(options.backend, '--backend');
  const fromEnv = options.env.AWS_VAULT_BACKEND;
  if (fromEnv !== undefined && fromEnv !== '') return normalizeBackendName(fromEnv, 'AWS_VAULT_BACKEND');
  const platform = options.platform ?? process.platform;
  if (platform !== 'darwin' && platform !== 'win32' && !options.env.DBUS_SESSION_BUS_ADDRESS) return 'file';
  try {
    await (options.loadKeytar ?? (() => loadKeytar(platform)))();
    return 'keychain';
  } catch {
    return 'file';
  }
}

/** AWS_VAULT_FILE_DIR (with `~` expanded, relative paths against the working directory) or ~/.awsvault/keys. */
export function defaultFileDir(env: NodeJS.ProcessEnv, homeDir: string, flag?: string): string {
  const dir = flag || env.AWS_VAULT_FILE_DIR;
  if (dir === undefined || dir === '') return join(homeDir, '.awsvault', 'keys');
  if (dir === '~') return homeDir;
  if (dir.startsWith('~/') || dir.startsWith('~\\')) return join(homeDir, dir.slice(2));
  return isAbsolute(dir) ? dir : resolve(dir);
}

/** Opens the chosen backend. An explicitly chosen keychain that cannot work fails here, with the remedy. */
export async function openKeyring(options: OpenKeyringOptions): Promise<Keyring> {
  const platform = options.platform ?? process.platform;
  const backend = await resolveBackendName({ ...options, platform });
  if (backend === 'file') {
    return new FileKeyring({
      dir: defaultFileDir(options.env, options.homeDir, options.fileDir),
      homeDir: options.homeDir,
      passphrase: options.passphrase,
      platform,
      ...(options.rememberDecrypted ? { rememberDecrypted: true } : {}),
    });
  }
  if (backend === 'pass') {
    const pass = new PassKeyring(passOptions(options.pass ?? {}, options.env, options.homeDir));
    await pass.ready();
    return pass;
  }
  const keyring = new KeytarKeyring({
    env: options.env,
    platform,
    ...(options.keychainTimeoutMs === undefined ? {} : { timeoutMs: options.keychainTimeoutMs }),
    ...(options.loadKeytar === undefined ? {} : { loadKeytar: options.loadKeytar }),
  });
  await keyring.ready();
  return keyring;
}
