import { accessSync, closeSync, constants, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { isLoopback, type PeerSocket } from './peerPid.js';

/** The parts of an accepted TCP socket the decision needs (node's net.Socket has them). */
export interface PeerUidSocket extends PeerSocket {
  localAddress?: string | undefined;
}

/** What a credential listener decided about one connection. */
export interface PeerUidDecision {
  allowed: boolean;
  /** The uid that owns the client's socket, when it was found. */
  uid?: number;
}

/**
 * Whether a connection comes from a process of the daemon's own user. Decided once per connection,
 * as it is accepted; keep-alive requests reuse the decision.
 */
export interface PeerUidGate {
  /** Starts the decision for a connection the listener has just accepted. */
  admit(socket: PeerUidSocket & object): void;
  /** The decision once made, without waiting; undefined while it is being made (or never started). */
  decided(socket: PeerUidSocket & object): PeerUidDecision | undefined;
  /** The decision, starting it if `admit` was not called. */
  decide(socket: PeerUidSocket & object): Promise<PeerUidDecision>;
}

const ALLOWED: PeerUidDecision = Object.freeze({ allowed: true });
const REFUSED: PeerUidDecision = Object.freeze({ allowed: false });

/** Every connection allowed: where the OS cannot tell whose a connection is (see canTellPeerUids). */
export const openPeerUidGate: PeerUidGate = {
  admit: () => undefined,
  decided: () => ALLOWED,
  decide: async () => ALLOWED,
};

/**
 * Whether this machine can tell which user a loopback connection belongs to: Linux, with
 * `/proc/net/tcp` readable. macOS and Windows cannot (no /proc; their per-socket owner lookups need
 * privileges or native code), so there every local process can read a session's IMDS credentials.
 */
export function canTellPeerUids(platform: NodeJS.Platform = process.platform, procRoot = '/proc'): boolean {
  if (platform !== 'linux') return false;
  try {
    accessSync(`${procRoot}/net/tcp`, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** A connection waiting for its decision: the client's row has local = client, remote = us. */
interface Pending {
  /** `ADDR:PORT` of the client and of our listener as /proc/net/tcp{,6} prints them, per file. */
  client: { tcp?: string; tcp6?: string };
  server: { tcp?: string; tcp6?: string };
  resolve: (decision: PeerUidDecision) => void;
}

/**
 * After a read that took T, the next starts no sooner than READ_SPACING × T later, so reading /proc
 * takes at most 1/(1 + READ_SPACING) of the event loop however fast connections arrive (a flood of
 * new connections makes bigger batches, not more reads). With a handful of sockets T is about
 * 1 ms, so a lone new connection never waits for the spacing.
 */
const READ_SPACING = 4;

/** /proc answers a read of /proc/net/tcp one page at a time, whatever the buffer. */
const READ_CHUNK = 64 * 1024;

/**
 * Linux: the client's end of a loopback connection is the row of /proc/net/tcp (tcp6 for sockets
 * of the IPv6 family, IPv4-mapped included) whose local address is our peer's and whose remote
 * address is our listener's; its uid column is the user that owns the client's socket. The row is
 * read when the connection is accepted — the client is connected then, and stays so while it
 * waits for its first answer, which waits for this. Addresses are matched as well as ports: a
 * user who binds 127.0.0.2 to the port of someone else's live connection must not borrow its row.
 *
 * Only the daemon's own uid is allowed, root included: /proc cannot tell the machine's root from
 * the root of a `network_mode: host` container (uid 0 too, without the privileges to read the
 * daemon's memory), and a container runs as root unless told otherwise.
 *
 * Anything that cannot be decided is refused: no row (the client has gone), two live rows for one
 * connection, an unreadable /proc. Rows without an inode (TIME_WAIT) belong to no process and are
 * skipped.
 *
 * Cost: the kernel prints /proc/net/tcp a page per read(2) and walks its whole established-hash
 * table to do it, about 1 ms with a handful of sockets on a 2-vCPU machine and 4 ms with 3,000
 * (TIME_WAIT rows count: a listener whose clients use one connection per request accumulates
 * them for 60 s). So: one read per batch — every connection accepted in the same event-loop turn,
 * or while the next read is not yet due (READ_SPACING), is decided by the same read — stopping as
 * soon as every row waited for is found; never per request. The pages are read synchronously: each read(2) is tens
 * of microseconds of kernel time, and a thread-pool round trip per page made a read three times
 * slower.
 */
export class ProcPeerUidGate implements PeerUidGate {
  private readonly decisions = new WeakMap<object, PeerUidDecision | Promise<PeerUidDecision>>();
  private pending: Pending[] = [];
  private scheduled = false;
  /** When the next read may start (performance.now() time): see READ_SPACING. */
  private nextReadAt = 0;
  private readonly buffer = Buffer.allocUnsafe(READ_CHUNK);

  constructor(
    private readonly ownUid: number = process.getuid?.() ?? -1,
    private readonly procRoot = '/proc',
    private readonly readSpacing = READ_SPACING,
    /** Byte order /proc prints addresses in: the machine's own (a parameter so fixtures run anywhere). */
    private readonly littleEndian = endianness() === 'LE',
  ) {}

  admit(socket: PeerUidSocket & object): void {
    if (!this.decisions.has(socket)) this.start(socket);
  }

  decided(socket: PeerUidSocket & object): PeerUidDecision | undefined {
    const known = this.decisions.get(socket);
    return known instanceof Promise ? undefined : known;
  }

  decide(socket: PeerUidSocket & object): Promise<PeerUidDecision> {
    const known = this.decisions.get(socket) ?? this.start(socket);
    return Promise.resolve(known);
  }

  private start(socket: PeerUidSocket & object): PeerUidDecision | Promise<PeerUidDecision> {
    const client = procAddresses(socket.remoteAddress, socket.remotePort, this.littleEndian);
    const server = procAddresses(socket.localAddress, socket.localPort, this.littleEndian);
    if (!isLoopback(socket.remoteAddress) || client === undefined || server === undefined) {
      this.decisions.set(socket, REFUSED);
      return REFUSED;
    }
    const decision = new Promise<PeerUidDecision>((resolve) => {
      this.pending.push({
        client,
        server,
        resolve: (d) => {
          this.decisions.set(socket, d);
          resolve(d);
        },
      });
    });
    this.decisions.set(socket, decision);
    if (!this.scheduled) {
      this.scheduled = true;
      // Every connection accepted in this turn, or until the next read is due, joins the same read.
      const wait = this.nextReadAt - performance.now();
      if (wait > 0) setTimeout(() => this.drain(), wait).unref();
      else setImmediate(() => this.drain());
    }
    return decision;
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    const started = performance.now();
    const owners = new Map<Pending, number>();
    for (const file of ['tcp', 'tcp6'] as const) {
      const left = batch.filter((p) => !owners.has(p) && p.client[file] !== undefined);
      if (left.length === 0) continue;
      try {
        for (const [p, uid] of this.read(file, left)) owners.set(p, uid);
      } catch {
        // decided below: an owner not found is refused
      }
    }
    const ended = performance.now();
    this.nextReadAt = ended + (ended - started) * this.readSpacing;
    for (const p of batch) {
      const uid = owners.get(p);
      p.resolve(uid === undefined || uid < 0 ? REFUSED : { allowed: uid === this.ownUid, uid });
    }
  }

  /** Reads `/proc/net/FILE` page by page until every waiting row is found (or the end). */
  private read(file: 'tcp' | 'tcp6', waiting: Pending[]): Map<Pending, number> {
    const owners = new Map<Pending, number>();
    const wanted = waiting.map((p) => ({ p, local: p.client[file]!, remote: p.server[file]! }));
    const fd = openSync(`${this.procRoot}/net/${file}`, 'r');
    try {
      let carry = '';
      for (;;) {
        const n = readSync(fd, this.buffer, 0, this.buffer.length, null);
        const text = carry + this.buffer.toString('latin1', 0, n);
        const end = n === 0 ? text.length : text.lastIndexOf('\n') + 1;
        carry = text.slice(end);
        for (const [w, uid] of findOwners(text.slice(0, end), wanted)) {
          const seen = owners.get(w.p);
          owners.set(w.p, seen === undefined || seen === uid ? uid : -1);
        }
        if (n === 0 || owners.size === waiting.length) break;
      }
    } finally {
      closeSync(fd);
    }
    return owners;
  }
}

/**
 * The uid column of each wanted row of /proc/net/tcp{,6} text:
 * `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …`, addresses as
 * `HEX:PORT` (see procAddresses). Two live rows for one wanted pair give -1.
 */
export function findOwners<W extends { local: string; remote: string }>(text: string, wanted: W[]): Map<W, number> {
  const owners = new Map<W, number>();
  const listeners = [...new Set(wanted.map((w) => ` ${w.remote} `))];
  for (const row of text.split('\n')) {
    // Most rows are other sockets: skip those without one of our listeners as remote cheaply.
    if (!listeners.some((l) => row.includes(l))) continue;
    const cols = row.trim().split(/\s+/);
    const local = cols[1];
    const remote = cols[2];
    const uidText = cols[7];
    const inode = cols[9];
    if (!local || !remote || !uidText || !inode || inode === '0') continue;
    for (const w of wanted) {
      if (w.local !== local || w.remote !== remote) continue;
      const uid = Number(uidText);
      const seen = owners.get(w);
      owners.set(w, !Number.isInteger(uid) ? -1 : seen === undefined || seen === uid ? uid : -1);
    }
  }
  return owners;
}

/**
 * An address and port as /proc/net/tcp and tcp6 print them: each 32-bit word of the address in
 * the machine's byte order as 8 upper-case hex digits (`127.0.0.1` is `0100007F` on
 * little-endian machines), then `:` and the port in 4. An IPv4 address appears in tcp (an IPv4
 * socket) or, v4-mapped, in tcp6 (an IPv6 socket connected to it). Undefined for anything else.
 */
export function procAddresses(address: string | undefined, port: number | undefined, little = endianness() === 'LE'): { tcp?: string; tcp6?: string } | undefined {
  if (!address || !port) return undefined;
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(address);
  if (v4) {
    const bytes = v4.slice(1, 5).map(Number);
    if (bytes.some((b) => b > 255)) return undefined;
    return { tcp: words(bytes, little) + suffix, tcp6: words([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...bytes], little) + suffix };
  }
  if (address === '::1') return { tcp6: words([...new Array<number>(15).fill(0), 1], little) + suffix };
  return undefined;
}

function words(bytes: number[], little: boolean): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const word = little ? bytes.slice(i, i + 4).reverse() : bytes.slice(i, i + 4);
    out += word.map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join('');
  }
  return out;
}

let shared: PeerUidGate | undefined;

/** The gate for this machine, shared by every listener of the process. */
export function defaultPeerUidGate(): PeerUidGate {
  shared ??= canTellPeerUids() ? new ProcPeerUidGate() : openPeerUidGate;
  return shared;
}

/** What a refused connection is told (the same whatever the reason: no uid is named). */
export const USER_NOT_ALLOWED_MESSAGE = 'only processes of the user running the vault daemon may ask it for credentials';
