import { connect, type Socket } from 'node:net';

/**
 * A minimal D-Bus client: connect to a unix-socket bus, EXTERNAL auth, method calls and their
 * replies, with the marshalling they need — what the Secret Service probe asks of a bus and
 * nothing more. It knows nothing of vault's errors; the probe maps its failures to lines a person
 * can act on.
 */

/** The bus itself, as a destination and object (Hello, NameHasOwner, ListActivatableNames). */
export const BUS = 'org.freedesktop.DBus';
export const BUS_PATH = '/org/freedesktop/DBus';

/** A bus address this client does not speak (tcp:, launchd:): the caller skips its check. */
export class UnsupportedAddress extends Error {}
/** An error reply from the bus or a service. */
export class DbusError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(`${errorName}: ${message}`);
  }
}
/** The bus or the service did not answer before the caller's deadline. */
export class DbusTimeout extends Error {}

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

/** Just enough D-Bus (EXTERNAL auth, method calls, replies) for the Secret Service probe. */
export class MiniDbus {
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
