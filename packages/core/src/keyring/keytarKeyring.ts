import { VaultError } from '../errors.js';
import { FILE_REMEDY, oneLine } from './keychainRemedy.js';
import type { Keyring } from './keyring.js';
import { checkSecretService } from './secretServiceProbe.js';

/**
 * The `keychain` backend: macOS Keychain, Windows Credential Manager, or a Secret Service
 * (gnome-keyring, KeePassXC…) on Linux, through keytar — the only module that imports keytar.
 * Items: service `vault`, account = key, password = value.
 *
 * Every call is bounded (default 2 s): a native keychain call can block for as long as an unlock
 * dialog stays open, or forever when the Secret Service never answers. When the bound is hit the
 * call fails with one line saying why and what to do; the native call is abandoned (its worker
 * thread stays busy until it returns, so a CLI should exit rather than wait for the event loop).
 *
 * On Linux a check over D-Bus runs first, because keytar/libsecret cannot report a locked
 * collection: with gnome-keyring 42 and no prompter, `getPassword` on a locked collection returns
 * null (the item looks absent) and `findCredentials` crashes the process (libsecret hands keytar a
 * NULL secret). The check (secretServiceProbe.ts, over the minimal D-Bus client in dbusWire.ts)
 * talks to the session bus directly: it finds whether a Secret Service is there at all, whether
 * the default collection is locked, and whether any `vault` item sits in a locked collection, and
 * answers KEYRING_UNAVAILABLE / KEYRING_LOCKED without ever triggering an unlock prompt.
 */

export const KEYCHAIN_SERVICE = 'vault';
export const KEYCHAIN_TIMEOUT_MS = 2000;

/** The part of keytar we use. */
export interface KeytarApi {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  deletePassword(service: string, account: string): Promise<boolean>;
  findCredentials(service: string): Promise<Array<{ account: string; password: string }>>;
}

export interface KeytarKeyringOptions {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  /** Bound on every call, pre-checks included. */
  timeoutMs?: number;
  /** How keytar is loaded; defaults to `loadKeytar`. */
  loadKeytar?: () => Promise<KeytarApi>;
  /** The D-Bus pre-check on Linux (default on); tests turn it off to see keytar's own errors. */
  secretServiceCheck?: boolean;
}


let keytarPromise: Promise<KeytarApi> | undefined;

/**
 * Loads keytar (an optional, native dependency) once per process. Rejects with
 * KEYRING_UNAVAILABLE naming what to install when it is missing or cannot be loaded.
 */
export function loadKeytar(platform: NodeJS.Platform = process.platform): Promise<KeytarApi> {
  keytarPromise ??= importKeytar(platform);
  return keytarPromise;
}

async function importKeytar(platform: NodeJS.Platform): Promise<KeytarApi> {
  // A variable specifier: keytar is optional, so neither tsc nor a bundler may insist on it.
  const specifier = 'keytar';
  try {
    const mod = (await import(specifier)) as { default?: KeytarApi } & Partial<KeytarApi>;
    const api = (mod.default ?? mod) as KeytarApi;
    if (typeof api.getPassword !== 'function' || typeof api.findCredentials !== 'function') throw new Error('keytar has an unexpected shape');
    return api;
  } catch (cause) {
    throw keytarUnavailable(cause, platform);
  }
}

/** The error for a keytar that cannot be loaded; exported for tests and for other loaders. */
export function keytarUnavailable(cause: unknown, platform: NodeJS.Platform = process.platform): VaultError {
  const detail = oneLine(cause instanceof Error ? cause.message : String(cause));
  const missing = /cannot find (module|package)|ERR_MODULE_NOT_FOUND/i.test(detail);
  const what = missing ? 'the keytar module is not installed' : `keytar could not be loaded (${detail})`;
  const install =
    platform === 'linux'
      ? 'install libsecret (Debian/Ubuntu: `apt-get install libsecret-1-0`; Fedora: `dnf install libsecret`) and reinstall vault so keytar is built'
      : 'reinstall vault so its keytar module is built for this Node.js';
  return new VaultError('KEYRING_UNAVAILABLE', `the keychain backend is unavailable: ${what}`, { hint: `${install}, ${FILE_REMEDY}`, cause });
}

/** How long a listing's values and a service-wide check stand in for the next read (one command's worth). */
const LISTING_REUSE_MS = 1_000;

export class KeytarKeyring implements Keyring {
  readonly backend = 'keychain';
  private readonly env: NodeJS.ProcessEnv;
  private readonly platform: NodeJS.Platform;
  private readonly timeoutMs: number;
  private readonly load: () => Promise<KeytarApi>;
  private readonly check: boolean;
  /**
   * What the last listing found, for a read that follows it at once: a command lists the items
   * to find cached credentials and then reads one, and the listing already carried every value.
   * Kept `LISTING_REUSE_MS` at most, and dropped on any write: no longer than the two calls would
   * have taken anyway, so nothing is older than it would have been.
   */
  private listing: { at: number; values: Map<string, string> } | undefined;
  /** When a service-wide read check last passed (see run). */
  private readCheckedAt: number | undefined;

  constructor(options: KeytarKeyringOptions = {}) {
    this.env = options.env ?? process.env;
    this.platform = options.platform ?? process.platform;
    this.timeoutMs = options.timeoutMs ?? KEYCHAIN_TIMEOUT_MS;
    this.load = options.loadKeytar ?? (() => loadKeytar(this.platform));
    this.check = options.secretServiceCheck ?? true;
  }

  private get usesSecretService(): boolean {
    return this.platform !== 'darwin' && this.platform !== 'win32';
  }

  /** Loads keytar and, on Linux, checks the session bus is there; for failing early in `openKeyring`. */
  async ready(): Promise<void> {
    this.requireBus();
    await this.loadOrExplain();
  }

  private async loadOrExplain(): Promise<KeytarApi> {
    try {
      return await this.load();
    } catch (error) {
      throw error instanceof VaultError ? error : keytarUnavailable(error, this.platform);
    }
  }

  get(key: string): Promise<string | undefined> {
    const listed = this.listing;
    if (listed && Date.now() - listed.at < LISTING_REUSE_MS && listed.values.has(key)) {
      requireKey(key);
      return Promise.resolve(listed.values.get(key));
    }
    return this.run('read', { service: KEYCHAIN_SERVICE, account: key }, async (keytar) => {
      requireKey(key);
      return (await keytar.getPassword(KEYCHAIN_SERVICE, key)) ?? undefined;
    });
  }

  set(key: string, value: string): Promise<void> {
    this.listing = undefined;
    return this.run('write', { service: KEYCHAIN_SERVICE, account: key }, async (keytar) => {
      requireKey(key);
      if (value === '') throw new VaultError('USAGE', 'the keychain cannot store an empty value');
      await keytar.setPassword(KEYCHAIN_SERVICE, key, value);
    });
  }

  remove(key: string): Promise<boolean> {
    this.listing = undefined;
    return this.run('read', { service: KEYCHAIN_SERVICE, account: key }, async (keytar) => {
      requireKey(key);
      return keytar.deletePassword(KEYCHAIN_SERVICE, key);
    });
  }

  keys(): Promise<string[]> {
    return this.run('read', { service: KEYCHAIN_SERVICE }, async (keytar) => {
      const found = await keytar.findCredentials(KEYCHAIN_SERVICE);
      this.listing = { at: Date.now(), values: new Map(found.map((c) => [c.account, c.password])) };
      return [...new Set(found.map((c) => c.account))].sort();
    });
  }

  private requireBus(): void {
    if (this.usesSecretService && !this.env.DBUS_SESSION_BUS_ADDRESS) {
      throw new VaultError('KEYRING_UNAVAILABLE', 'no D-Bus session for the keychain backend (DBUS_SESSION_BUS_ADDRESS is not set)', {
        hint: `run vault in a desktop or D-Bus session with gnome-keyring (e.g. \`dbus-run-session -- $SHELL\`), ${FILE_REMEDY}`,
      });
    }
  }

  private async run<T>(mode: 'read' | 'write', attributes: Record<string, string>, op: (keytar: KeytarApi) => Promise<T>): Promise<T> {
    this.requireBus();
    const deadline = Date.now() + this.timeoutMs;
    const work = (async () => {
      const keytar = await this.loadOrExplain();
      if (this.usesSecretService && this.check && !this.recentlyChecked(mode)) {
        await checkSecretService(this.env.DBUS_SESSION_BUS_ADDRESS!, mode, attributes, deadline);
        // A service-wide read check covers every item of the service: a read of one of them
        // right after (a listing, then cached credentials) need not open the bus again.
        if (mode === 'read' && attributes.account === undefined) this.readCheckedAt = Date.now();
      }
      try {
        return await op(keytar);
      } catch (error) {
        throw error instanceof VaultError ? error : this.mapKeytarError(error);
      }
    })();
    // An abandoned call may still fail later: that must not become an unhandled rejection.
    work.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.timeoutError()), Math.max(0, deadline - Date.now()));
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private recentlyChecked(mode: 'read' | 'write'): boolean {
    return mode === 'read' && this.readCheckedAt !== undefined && Date.now() - this.readCheckedAt < LISTING_REUSE_MS;
  }

  private timeoutError(): VaultError {
    if (this.usesSecretService) {
      return new VaultError('KEYRING_UNAVAILABLE', `the Secret Service did not answer within ${this.timeoutMs} ms`, {
        hint: `it may be waiting on an unlock prompt: unlock the keyring or restart gnome-keyring, ${FILE_REMEDY}`,
      });
    }
    const store = this.platform === 'darwin' ? 'macOS Keychain' : 'Windows Credential Manager';
    return new VaultError('KEYRING_LOCKED', `the ${store} did not answer within ${this.timeoutMs} ms (it is probably locked and waiting for an unlock dialog)`, {
      hint: `unlock it and try again, ${FILE_REMEDY}`,
    });
  }

  /** keytar rejects with the platform's message text; map it to something a person can act on. */
  private mapKeytarError(error: unknown): VaultError {
    const detail = oneLine(error instanceof Error ? error.message : String(error)).replace(/^GDBus\.Error:[\w.]+:\s*/, '');
    if (/dbus-launch|autolaunch|Could not connect|DBUS_SESSION_BUS_ADDRESS|\$DISPLAY|X11/i.test(detail)) {
      return new VaultError('KEYRING_UNAVAILABLE', `cannot reach the D-Bus session bus (${detail})`, {
        hint: `run vault in a desktop or D-Bus session with gnome-keyring, ${FILE_REMEDY}`,
        cause: error,
      });
    }
    if (/org\.freedesktop\.secrets|ServiceUnknown|not provided by any \.service|NameHasNoOwner/i.test(detail)) {
      return new VaultError('KEYRING_UNAVAILABLE', `no Secret Service on the D-Bus session bus (${detail})`, {
        hint: `start gnome-keyring (\`gnome-keyring-daemon --start --components=secrets\`) or KeePassXC's Secret Service, ${FILE_REMEDY}`,
        cause: error,
      });
    }
    if (/locked|dismissed|cancel+ed|interaction is not allowed|passphrase you entered is not correct/i.test(detail)) {
      return new VaultError('KEYRING_LOCKED', `the keychain is locked (${detail})`, {
        hint: `unlock it (log in to the desktop session, or unlock it with seahorse / Keychain Access) and try again, ${FILE_REMEDY}`,
        cause: error,
      });
    }
    if (/Object does not exist at path|no such (object|collection)|keychain could not be found/i.test(detail)) {
      return new VaultError('KEYRING_UNAVAILABLE', `the keychain has no default keyring to store into (${detail})`, {
        hint: `create a default keyring (log in to a desktop session, or \`gnome-keyring-daemon --unlock\`), ${FILE_REMEDY}`,
        cause: error,
      });
    }
    return new VaultError('KEYRING_UNAVAILABLE', `the keychain failed: ${detail}`, { hint: `check the keychain, ${FILE_REMEDY}`, cause: error });
  }
}

function requireKey(key: string): void {
  if (key === '') throw new VaultError('USAGE', 'the keychain needs a non-empty key');
}
