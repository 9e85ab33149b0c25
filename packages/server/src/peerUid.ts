import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isLoopback, type PeerSocket } from './peerPid.js';

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
  admit(socket: PeerSocket & object): void;
  /** The decision once made, without waiting; undefined while it is being made (or never started). */
  decided(socket: PeerSocket & object): PeerUidDecision | undefined;
  /** The decision, starting it if `admit` was not called. */
  decide(socket: PeerSocket & object): Promise<PeerUidDecision>;
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

interface Pending {
  clientPort: number;
  serverPort: number;
  resolve: (decision: PeerUidDecision) => void;
}

/**
 * Linux: the client's end of a loopback connection is a row of /proc/net/tcp (tcp6 for IPv6)
 * whose local port is our peer's port and whose remote port is ours; its uid column is the user
 * that owns the client's socket. The row is read when the connection is accepted — the client is
 * connected then, and stays so while it waits for its first answer, which waits for this.
 *
 * Only the daemon's own uid is allowed, root included: /proc cannot tell the machine's root from
 * the root of a `network_mode: host` container (uid 0 too, without the privileges to read the
 * daemon's memory), and a container runs as root unless told otherwise.
 *
 * Anything that cannot be decided is refused: no row (the client has gone), two rows for the same
 * ports owned by different users, an unreadable /proc. Rows without an inode (TIME_WAIT, a
 * half-open handshake) belong to no process and are skipped.
 *
 * Cost: one read of /proc/net/tcp per batch of connections accepted while the previous read ran
 * (every connection waiting is decided by the same read), never per request.
 */
export class ProcPeerUidGate implements PeerUidGate {
  private readonly decisions = new WeakMap<object, PeerUidDecision | Promise<PeerUidDecision>>();
  private pending: Pending[] = [];
  private reading = false;

  constructor(
    private readonly ownUid: number = process.getuid?.() ?? -1,
    private readonly procRoot = '/proc',
  ) {}

  admit(socket: PeerSocket & object): void {
    if (!this.decisions.has(socket)) this.start(socket);
  }

  decided(socket: PeerSocket & object): PeerUidDecision | undefined {
    const known = this.decisions.get(socket);
    return known instanceof Promise ? undefined : known;
  }

  decide(socket: PeerSocket & object): Promise<PeerUidDecision> {
    const known = this.decisions.get(socket) ?? this.start(socket);
    return Promise.resolve(known);
  }

  private start(socket: PeerSocket & object): PeerUidDecision | Promise<PeerUidDecision> {
    const clientPort = socket.remotePort;
    const serverPort = socket.localPort;
    if (!clientPort || !serverPort || !isLoopback(socket.remoteAddress)) {
      this.decisions.set(socket, REFUSED);
      return REFUSED;
    }
    const decision = new Promise<PeerUidDecision>((resolve) => {
      this.pending.push({
        clientPort,
        serverPort,
        resolve: (d) => {
          this.decisions.set(socket, d);
          resolve(d);
        },
      });
    });
    this.decisions.set(socket, decision);
    void this.drain();
    return decision;
  }

  /** One read at a time; connections accepted during a read wait for the next (theirs may not be in it). */
  private async drain(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        let owners = new Map<Pending, number>();
        try {
          owners = await this.ownersOf(batch);
        } catch {
          // decided below: an owner not found is refused
        }
        for (const p of batch) {
          const uid = owners.get(p);
          p.resolve(uid === undefined || uid < 0 ? REFUSED : { allowed: uid === this.ownUid, uid });
        }
      }
    } finally {
      this.reading = false;
    }
  }

  /** The uid owning each waiting client's socket; -1 where rows disagree. tcp6 only for those not in tcp. */
  private async ownersOf(batch: Pending[]): Promise<Map<Pending, number>> {
    const owners = new Map<Pending, number>();
    for (const file of ['tcp', 'tcp6']) {
      const left = batch.filter((p) => !owners.has(p));
      if (left.length === 0) break;
      const text = await readFile(`${this.procRoot}/net/${file}`, 'utf8').catch(() => '');
      for (const [p, uid] of findOwners(text, left)) owners.set(p, uid);
    }
    return owners;
  }
}

/**
 * The uid column of each waiting client's row in /proc/net/tcp{,6} text:
 * `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …`, addresses as
 * `HEX:PORT` with the port in 4 upper-case hex digits.
 */
export function findOwners<P extends { clientPort: number; serverPort: number }>(text: string, waiting: P[]): Map<P, number> {
  const owners = new Map<P, number>();
  // Skip every row without one of our listeners' ports cheaply: most rows are other sockets.
  const serverPorts = [...new Set(waiting.map((p) => `:${hexPort(p.serverPort)} `))];
  for (const row of text.split('\n')) {
    if (!serverPorts.some((port) => row.includes(port))) continue;
    const cols = row.trim().split(/\s+/);
    const local = cols[1];
    const remote = cols[2];
    const uidText = cols[7];
    const inode = cols[9];
    if (!local || !remote || !uidText || !inode || inode === '0') continue;
    const localPort = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    const remotePort = parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16);
    const uid = Number(uidText);
    if (!Number.isInteger(uid)) continue;
    for (const p of waiting) {
      if (p.clientPort !== localPort || p.serverPort !== remotePort) continue;
      const seen = owners.get(p);
      // The same port pair from two loopback addresses, owned by two users: refuse rather than guess.
      owners.set(p, seen === undefined || seen === uid ? uid : -1);
    }
  }
  return owners;
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

let shared: PeerUidGate | undefined;

/** The gate for this machine, shared by every listener of the process. */
export function defaultPeerUidGate(): PeerUidGate {
  shared ??= canTellPeerUids() ? new ProcPeerUidGate() : openPeerUidGate;
  return shared;
}

/** What a refused connection is told (the same whatever the reason: no uid is named). */
export const USER_NOT_ALLOWED_MESSAGE = 'only processes of the user running the vault daemon may ask it for credentials';
