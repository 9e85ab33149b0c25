import { readdirSync, readlinkSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** The parts of a TCP socket the lookup needs (node's net.Socket has them). */
export interface PeerSocket {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
  localPort?: number | undefined;
}

export interface PeerPidResolver {
  /** The pid of the process at the other end of a loopback connection, best effort. */
  lookup(socket: PeerSocket): Promise<number | undefined>;
  /** The result of a lookup that has finished, without waiting; undefined while none has. */
  settled?(socket: PeerSocket): { pid: number | undefined } | undefined;
}

interface Pending {
  clientPort: number;
  serverPort: number;
  resolve: (pid: number | undefined) => void;
}

/** Processes whose fds one event-loop turn reads (about 0.1 ms each on a desktop's /proc). */
const PIDS_PER_TURN = 16;

/** No lookup at all (other operating systems, or when disabled). */
export const noPeerPid: PeerPidResolver = { lookup: async () => undefined };

/**
 * Linux: the client's end of a loopback connection is a row of /proc/net/tcp{,6} whose local port
 * is our peer's port and whose remote port is ours; its inode is what `/proc/PID/fd/N` links to
 * (`socket:[INODE]`). Reading /proc is slow next to answering a request, so a lookup starts when
 * a connection is accepted (the client is certainly still connected then; a one-shot client's
 * row is gone soon after the response) and runs beside the request, never in front of it: once
 * per connection (keep-alive clients reuse it), one scan at a time, at most one scan per
 * `minScanIntervalMs`, every waiting connection resolved by the same scan, and at most
 * `maxPending` waiting (beyond that the pid stays unknown rather than the daemon busy).
 * Only processes the daemon's user may inspect are found, which is every process of that user.
 *
 * The fd links are read synchronously, `PIDS_PER_TURN` processes at a time: /proc answers from
 * memory in microseconds, while an awaited readlink per fd costs an event-loop turn each — under
 * load, behind every request of that turn — and made one scan of a few hundred fds take seconds.
 */
export class ProcPeerPidResolver implements PeerPidResolver {
  private readonly bySocket = new WeakMap<object, Promise<number | undefined>>();
  private readonly done = new WeakMap<object, { pid: number | undefined }>();
  private pending: Pending[] = [];
  private scanning = false;

  constructor(
    private readonly procRoot = '/proc',
    private readonly minScanIntervalMs = 50,
    private readonly maxPending = 256,
  ) {}

  lookup(socket: PeerSocket): Promise<number | undefined> {
    const known = this.bySocket.get(socket);
    if (known) return known;
    const clientPort = socket.remotePort;
    const serverPort = socket.localPort;
    if (!clientPort || !serverPort || !isLoopback(socket.remoteAddress) || this.pending.length >= this.maxPending) {
      return Promise.resolve(undefined);
    }
    const found = new Promise<number | undefined>((resolve) => {
      this.pending.push({
        clientPort,
        serverPort,
        resolve: (pid) => {
          this.done.set(socket, { pid });
          resolve(pid);
        },
      });
    });
    this.bySocket.set(socket, found);
    void this.drain();
    return found;
  }

  settled(socket: PeerSocket): { pid: number | undefined } | undefined {
    return this.done.get(socket);
  }

  private async drain(): Promise<void> {
    if (this.scanning) return;
    this.scanning = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        let result = new Map<Pending, number | undefined>();
        try {
          result = await this.scan(batch);
        } catch {
          // best effort: an unreadable /proc leaves the pid unknown
        }
        for (const p of batch) p.resolve(result.get(p));
        if (this.pending.length > 0 && this.minScanIntervalMs > 0) {
          await new Promise<void>((resolve) => setTimeout(resolve, this.minScanIntervalMs).unref());
        }
      }
    } finally {
      this.scanning = false;
    }
  }

  private async scan(batch: Pending[]): Promise<Map<Pending, number | undefined>> {
    const inodes = new Map<string, Pending[]>();
    const rows = (await Promise.all(['tcp', 'tcp6'].map((f) => readFile(`${this.procRoot}/net/${f}`, 'utf8').catch(() => ''))))
      .join('\n')
      .split('\n');
    // Rows print ports as 4 upper-case hex digits; skip every row without one of our ports cheaply.
    const serverPorts = [...new Set(batch.map((p) => `:${p.serverPort.toString(16).toUpperCase().padStart(4, '0')} `))];
    for (const row of rows) {
      if (!serverPorts.some((port) => row.includes(port))) continue;
      const cols = row.trim().split(/\s+/);
      const local = cols[1];
      const remote = cols[2];
      const inode = cols[9];
      if (!local || !remote || !inode || inode === '0') continue;
      const localPort = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      const remotePort = parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16);
      for (const p of batch) {
        if (p.clientPort === localPort && p.serverPort === remotePort) {
          const list = inodes.get(inode) ?? [];
          list.push(p);
          inodes.set(inode, list);
        }
      }
    }
    const result = new Map<Pending, number | undefined>();
    if (inodes.size === 0) return result;
    const links = new Map<string, Pending[]>();
    for (const [inode, list] of inodes) links.set(`socket:[${inode}]`, list);
    // Our own process first: in-process clients (tests, the CLI's exec) are common and cheap.
    const pids = [String(process.pid), ...(await readdir(this.procRoot)).filter((d) => /^\d+$/.test(d) && d !== String(process.pid))];
    for (const [index, pid] of pids.entries()) {
      if (links.size === 0) break;
      if (index > 0 && index % PIDS_PER_TURN === 0) await nextTurn();
      let fds: string[];
      try {
        fds = readdirSync(`${this.procRoot}/${pid}/fd`);
      } catch {
        continue; // gone, or another user's
      }
      for (const fd of fds) {
        let target: string;
        try {
          target = readlinkSync(`${this.procRoot}/${pid}/fd/${fd}`);
        } catch {
          continue;
        }
        const list = links.get(target);
        if (list) {
          for (const p of list) result.set(p, Number(pid));
          links.delete(target);
          if (links.size === 0) break;
        }
      }
    }
    return result;
  }
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  if (address === '::1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** The resolver for this platform. */
export function defaultPeerPidResolver(): PeerPidResolver {
  return process.platform === 'linux' ? new ProcPeerPidResolver() : noPeerPid;
}
