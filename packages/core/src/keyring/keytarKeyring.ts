import { connect, type Socket } from 'node:net';
import { VaultError } from '../errors.js';
import type { Keyring } from './keyring.js';

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
 * NULL secret). The check talks to the session bus directly (a minimal client below): it finds
 * whether a Secret Service is there at all, whether the default collection is locked, and whether
 * any `vault` item sits in a locked collection, and answers KEYRING_UNAVAILABLE / KEYRING_LOCKED
 * without ever triggering an unlock prompt.
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

const FILE_REMEDY = 'or use `--backend file` (AWS_VAULT_BACKEND=file)';

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
   * to find a cached session and then reads one, and the listing already carried every value.
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
        // right after (a listing, then a cached session) need not open the bus again.
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

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

// ---------------------------------------------------------------------------------------------
// The Secret Service check (Linux), over a minimal D-Bus client.
// ---------------------------------------------------------------------------------------------

const SECRETS = 'org.freedesktop.secrets';
const SECRETS_PATH = '/org/freedesktop/secrets';
const SERVICE_IFACE = 'org.freedesktop.Secret.Service';
const COLLECTION_IFACE = 'org.freedesktop.Secret.Collection';
const PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties';
const BUS = 'org.freedesktop.DBus';
const BUS_PATH = '/org/freedesktop/DBus';

const LOCKED_HINT = `unlock it (log in to the desktop session, or unlock the "Login" keyring in seahorse) or start gnome-keyring unlocked, ${FILE_REMEDY}`;

/**
 * Resolves when keytar can be used; rejects with KEYRING_UNAVAILABLE / KEYRING_LOCKED otherwise.
 * Bus addresses it cannot speak to (tcp:, launchd:) skip the check and leave it to keytar.
 */
async function checkSecretService(address: string, mode: 'read' | 'write', attributes: Record<string, string>, deadline: number): Promise<void> {
  let bus: MiniDbus | undefined;
  try {
    try {
      bus = await MiniDbus.connect(address, deadline);
    } catch (error) {
      if (error instanceof UnsupportedAddress) return;
      throw new VaultError('KEYRING_UNAVAILABLE', `cannot connect to the D-Bus session bus at ${address} (${describeNetError(error)})`, {
        hint: `run vault in a live desktop or D-Bus session (DBUS_SESSION_BUS_ADDRESS is stale), ${FILE_REMEDY}`,
        cause: error,
      });
    }
    const [hasOwner] = await bus.call(BUS, BUS_PATH, BUS, 'NameHasOwner', 's', [SECRETS]);
    if (hasOwner !== true) {
      const [activatable] = await bus.call(BUS, BUS_PATH, BUS, 'ListActivatableNames', '', []);
      if (!Array.isArray(activatable) || !activatable.includes(SECRETS)) {
        throw new VaultError('KEYRING_UNAVAILABLE', 'no Secret Service on the D-Bus session bus (nothing provides org.freedesktop.secrets)', {
          hint: `start gnome-keyring (\`gnome-keyring-daemon --start --components=secrets\`) or KeePassXC's Secret Service, ${FILE_REMEDY}`,
        });
      }
    }
    // Either call may start the service through D-Bus activation.
    const [defaultPath] = await bus.call(SECRETS, SECRETS_PATH, SERVICE_IFACE, 'ReadAlias', 's', ['default']);
    if (typeof defaultPath !== 'string' || defaultPath === '/') {
      if (mode === 'write') {
        throw new VaultError('KEYRING_UNAVAILABLE', 'the Secret Service has no default keyring to store into', {
          hint: `create one (log in to a desktop session, or \`gnome-keyring-daemon --unlock\`), ${FILE_REMEDY}`,
        });
      }
    } else {
      const [locked] = await bus.call(SECRETS, defaultPath, PROPERTIES_IFACE, 'Get', 'ss', [COLLECTION_IFACE, 'Locked']);
      if (locked === true) {
        const [label] = await bus.call(SECRETS, defaultPath, PROPERTIES_IFACE, 'Get', 'ss', [COLLECTION_IFACE, 'Label']).catch(() => [undefined]);
        const name = typeof label === 'string' && label !== '' ? label : defaultPath.split('/').pop();
        throw new VaultError('KEYRING_LOCKED', `the keychain is locked (Secret Service keyring "${name}")`, { hint: LOCKED_HINT });
      }
    }
    const [, lockedItems] = await bus.call(SECRETS, SECRETS_PATH, SERVICE_IFACE, 'SearchItems', 'a{ss}', [Object.entries(attributes)]);
    if (Array.isArray(lockedItems) && lockedItems.length > 0) {
      throw new VaultError('KEYRING_LOCKED', 'the keychain is locked (a vault item is in a locked Secret Service keyring)', { hint: LOCKED_HINT });
    }
  } catch (error) {
    if (error instanceof VaultError) throw error;
    if (error instanceof DbusError) {
      throw new VaultError('KEYRING_UNAVAILABLE', `the Secret Service failed: ${oneLine(error.message)}`, {
        hint: `check that gnome-keyring (or another Secret Service) is running, ${FILE_REMEDY}`,
        cause: error,
      });
    }
    if (error instanceof DbusTimeout) throw error.toVaultError();
    throw new VaultError('KEYRING_UNAVAILABLE', `the D-Bus session bus failed: ${oneLine(describeNetError(error))}`, {
      hint: `check the desktop or D-Bus session, ${FILE_REMEDY}`,
      cause: error,
    });
  } finally {
    bus?.close();
  }
}

function describeNetError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}

class UnsupportedAddress extends Error {}
class DbusError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(`${errorName}: ${message}`);
  }
}
class DbusTimeout extends Error {
  toVaultError(): VaultError {
    return new VaultError('KEYRING_UNAVAILABLE', 'the D-Bus session bus or the Secret Service did not answer in time', {
      hint: `check that gnome-keyring (or another Secret Service) is running, ${FILE_REMEDY}`,
    });
  }
}

/** `unix:path=/run/user/1000/bus` or `unix:abstract=/tmp/dbus-XYZ,guid=…`, `;`-separated alternatives. */
function socketPaths(address: string): string[] {
  const paths: string[] = [];
  for (const entry of address.split(';')) {
    const colon = entry.indexOf(':');
    if (colon < 0 || entry.slice(0, colon) !== 'unix') continue;
    const params = new Map(
      entry
        .slice(colon + 1)
        .split(',')
        .map((kv) => {
          const eq = kv.indexOf('=');
          return [kv.slice(0, eq), decodeURIComponent(kv.slice(eq + 1))] as const;
        }),
    );
    const path = params.get('path');
    const abstract = params.get('abstract');
    if (path) paths.push(path);
    else if (abstract) paths.push('\0' + abstract);
  }
  return paths;
}

interface Pending {
  resolve: (body: unknown[]) => void;
  reject: (error: Error) => void;
}

/** Just enough D-Bus (EXTERNAL auth, method calls, replies) for the checks above. */
class MiniDbus {
  private serial = 0;
  private buffer = Buffer.alloc(0);
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly deadline: number,
  ) {
    socket.on('data', (chunk) => this.receive(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('the D-Bus connection closed')));
  }

  static async connect(address: string, deadline: number): Promise<MiniDbus> {
    const paths = socketPaths(address);
    if (paths.length === 0) throw new UnsupportedAddress(address);
    let lastError: unknown;
    for (const path of paths) {
      const socket = connect({ path });
      socket.on('error', () => undefined); // errors are handled through the promises below
      try {
        await withTimeout(
          new Promise<void>((resolve, reject) => {
            socket.once('connect', () => resolve());
            socket.once('error', reject);
          }),
          deadline,
        );
        await authenticate(socket, deadline);
        const bus = new MiniDbus(socket, deadline);
        await bus.call(BUS, BUS_PATH, BUS, 'Hello', '', []);
        return bus;
      } catch (error) {
        socket.destroy();
        lastError = error;
      }
    }
    throw lastError;
  }

  call(destination: string, path: string, iface: string, member: string, signature: string, args: unknown[]): Promise<unknown[]> {
    if (this.failure) return Promise.reject(this.failure);
    const serial = ++this.serial;
    const body = new DbusWriter();
    splitSignature(signature).forEach((type, i) => body.write(type, args[i]));
    const fields: [number, [string, unknown]][] = [
      [1, ['o', path]],
      [2, ['s', iface]],
      [3, ['s', member]],
      [6, ['s', destination]],
    ];
    if (signature) fields.push([8, ['g', signature]]);
    const message = new DbusWriter();
    message.byte(0x6c); // 'l': little endian
    message.byte(1); // METHOD_CALL
    message.byte(0);
    message.byte(1); // protocol version
    message.u32(body.length);
    message.u32(serial);
    message.write('a(yv)', fields);
    message.align(8);
    const reply = new Promise<unknown[]>((resolve, reject) => this.pending.set(serial, { resolve, reject }));
    this.socket.write(Buffer.concat([message.toBuffer(), body.toBuffer()]));
    return withTimeout(reply, this.deadline);
  }

  close(): void {
    this.socket.destroy();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 16) return;
      const le = this.buffer[0] === 0x6c;
      const bodyLength = le ? this.buffer.readUInt32LE(4) : this.buffer.readUInt32BE(4);
      const fieldsLength = le ? this.buffer.readUInt32LE(12) : this.buffer.readUInt32BE(12);
      const headerLength = align(16 + fieldsLength, 8);
      const total = headerLength + bodyLength;
      if (this.buffer.length < total) return;
      const message = this.buffer.subarray(0, total);
      this.buffer = this.buffer.subarray(total);
      try {
        this.dispatch(message, le);
      } catch (error) {
        this.fail(error instanceof Error ? error : new Error(String(error)));
        this.socket.destroy();
        return;
      }
    }
  }

  private dispatch(message: Buffer, le: boolean): void {
    const type = message[1];
    const reader = new DbusReader(message, 12, le);
    const fields = new Map((reader.read('a(yv)') as [number, unknown][]).map(([code, value]) => [code, value]));
    reader.align(8);
    const replyTo = fields.get(5);
    if ((type !== 2 && type !== 3) || typeof replyTo !== 'number') return; // signals, calls to us
    const pending = this.pending.get(replyTo);
    if (!pending) return;
    this.pending.delete(replyTo);
    const signature = typeof fields.get(8) === 'string' ? (fields.get(8) as string) : '';
    const body = splitSignature(signature).map((t) => reader.read(t));
    if (type === 3) pending.reject(new DbusError(String(fields.get(4) ?? 'org.freedesktop.DBus.Error.Failed'), typeof body[0] === 'string' ? body[0] : ''));
    else pending.resolve(body);
  }
}

async function authenticate(socket: Socket, deadline: number): Promise<void> {
  const uid = process.getuid?.() ?? 0;
  const line = await withTimeout(
    new Promise<string>((resolve, reject) => {
      let received = '';
      const onData = (chunk: Buffer) => {
        received += chunk.toString('latin1');
        const end = received.indexOf('\r\n');
        if (end >= 0) {
          socket.off('data', onData);
          socket.off('error', reject);
          resolve(received.slice(0, end));
        }
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.write(`\0AUTH EXTERNAL ${Buffer.from(String(uid), 'ascii').toString('hex')}\r\n`);
    }),
    deadline,
  );
  if (!line.startsWith('OK ')) {
    throw new Error(`D-Bus authentication refused (${line.slice(0, 80)})`);
  }
  socket.write('BEGIN\r\n');
}

function withTimeout<T>(promise: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DbusTimeout()), Math.max(0, deadline - Date.now()));
    }),
  ]).finally(() => clearTimeout(timer));
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function alignmentOf(type: string): number {
  switch (type[0]) {
    case 'n':
    case 'q':
      return 2;
    case 'b':
    case 'i':
    case 'u':
    case 's':
    case 'o':
    case 'a':
    case 'h':
      return 4;
    case 'x':
    case 't':
    case 'd':
    case '(':
    case '{':
      return 8;
    default:
      return 1; // y, g, v
  }
}

/** Index just past the single complete type starting at `i`. */
function typeEnd(signature: string, i: number): number {
  const c = signature[i];
  if (c === 'a') return typeEnd(signature, i + 1);
  if (c === '(' || c === '{') {
    const close = c === '(' ? ')' : '}';
    let j = i + 1;
    while (j < signature.length && signature[j] !== close) j = typeEnd(signature, j);
    if (j >= signature.length) throw new Error(`bad D-Bus signature ${signature}`);
    return j + 1;
  }
  if (c === undefined) throw new Error(`bad D-Bus signature ${signature}`);
  return i + 1;
}

function splitSignature(signature: string): string[] {
  const types: string[] = [];
  for (let i = 0; i < signature.length; ) {
    const end = typeEnd(signature, i);
    types.push(signature.slice(i, end));
    i = end;
  }
  return types;
}

/** Little-endian marshalling; offsets are relative to the start of the message (or the 8-aligned body). */
class DbusWriter {
  private buf = Buffer.alloc(256);
  length = 0;

  toBuffer(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  align(to: number): void {
    const target = align(this.length, to);
    this.reserve(target - this.length);
    this.buf.fill(0, this.length, target);
    this.length = target;
  }

  byte(value: number): void {
    this.reserve(1);
    this.buf[this.length++] = value;
  }

  u32(value: number): void {
    this.align(4);
    this.reserve(4);
    this.buf.writeUInt32LE(value, this.length);
    this.length += 4;
  }

  private bytes(data: Buffer): void {
    this.reserve(data.length);
    data.copy(this.buf, this.length);
    this.length += data.length;
  }

  write(type: string, value: unknown): void {
    switch (type[0]) {
      case 'y':
        return this.byte(Number(value));
      case 'b':
        return this.u32(value ? 1 : 0);
      case 'u':
        return this.u32(Number(value));
      case 's':
      case 'o': {
        const data = Buffer.from(String(value), 'utf8');
        this.u32(data.length);
        this.bytes(data);
        return this.byte(0);
      }
      case 'g': {
        const data = Buffer.from(String(value), 'ascii');
        this.byte(data.length);
        this.bytes(data);
        return this.byte(0);
      }
      case 'v': {
        const [signature, inner] = value as [string, unknown];
        this.write('g', signature);
        return this.write(signature, inner);
      }
      case 'a': {
        this.align(4);
        const lengthAt = this.length;
        this.u32(0);
        const element = type.slice(1);
        this.align(alignmentOf(element));
        const start = this.length;
        for (const item of value as unknown[]) this.write(element, item);
        this.buf.writeUInt32LE(this.length - start, lengthAt);
        return;
      }
      case '(':
      case '{': {
        this.align(8);
        const members = splitSignature(type.slice(1, -1));
        members.forEach((member, i) => this.write(member, (value as unknown[])[i]));
        return;
      }
      default:
        throw new Error(`cannot marshal D-Bus type ${type}`);
    }
  }
}

class DbusReader {
  constructor(
    private readonly buf: Buffer,
    private pos: number,
    private readonly le: boolean,
  ) {}

  align(to: number): void {
    this.pos = align(this.pos, to);
  }

  private u32(): number {
    this.align(4);
    const value = this.le ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  read(type: string): unknown {
    switch (type[0]) {
      case 'y':
        return this.buf[this.pos++];
      case 'b':
        return this.u32() !== 0;
      case 'u':
      case 'h':
        return this.u32();
      case 'i': {
        const value = this.u32();
        return value | 0;
      }
      case 'n':
      case 'q': {
        this.align(2);
        const value = this.le ? this.buf.readUInt16LE(this.pos) : this.buf.readUInt16BE(this.pos);
        this.pos += 2;
        return type === 'n' ? (value << 16) >> 16 : value;
      }
      case 'x':
      case 't': {
        this.align(8);
        const value = this.le ? this.buf.readBigUInt64LE(this.pos) : this.buf.readBigUInt64BE(this.pos);
        this.pos += 8;
        return type === 'x' ? BigInt.asIntN(64, value) : value;
      }
      case 'd': {
        this.align(8);
        const value = this.le ? this.buf.readDoubleLE(this.pos) : this.buf.readDoubleBE(this.pos);
        this.pos += 8;
        return value;
      }
      case 's':
      case 'o': {
        const length = this.u32();
        const value = this.buf.toString('utf8', this.pos, this.pos + length);
        this.pos += length + 1;
        return value;
      }
      case 'g': {
        const length = this.buf[this.pos++]!;
        const value = this.buf.toString('ascii', this.pos, this.pos + length);
        this.pos += length + 1;
        return value;
      }
      case 'v': {
        const signature = this.read('g') as string;
        return this.read(signature);
      }
      case 'a': {
        const length = this.u32();
        const element = type.slice(1);
        this.align(alignmentOf(element));
        const end = this.pos + length;
        if (end > this.buf.length) throw new Error('truncated D-Bus message');
        const items: unknown[] = [];
        while (this.pos < end) items.push(this.read(element));
        return items;
      }
      case '(':
      case '{': {
        this.align(8);
        return splitSignature(type.slice(1, -1)).map((member) => this.read(member));
      }
      default:
        throw new Error(`cannot read D-Bus type ${type}`);
    }
  }
}
