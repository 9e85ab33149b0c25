import { tracingChannel } from 'node:diagnostics_channel';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildImdsServer, buildServer } from './buildServer.js';
import { canTellPeerUids, findOwners, procAddresses, ProcPeerUidGate, USER_NOT_ALLOWED_MESSAGE, type PeerUidDecision, type PeerUidGate } from './peerUid.js';
import { createHarness } from '@vault/stand-ins/server';

// Rows as Linux prints them: a listener on 127.0.0.1:47123 (0xB813), the accepted server side of a
// connection from port 40000 (0x9C40), the client's side of it (uid 1000), and an old connection
// from port 40001 in TIME_WAIT (no inode, uid 0).
const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const LISTENER = '   0: 0100007F:B813 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0';
const SERVER_SIDE = '   1: 0100007F:B813 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 20 4 0 10 -1';
const CLIENT_SIDE = '   2: 0100007F:9C40 0100007F:B813 01 00000000:00000000 00:00000000 00000000  1000        0 3333 1 0000000000000000 20 4 0 10 -1';
const TIME_WAIT = '   3: 0100007F:9C41 0100007F:B813 06 00000000:00000000 03:00000650 00000000     0        0 0 3 0000000000000000';

describe('procAddresses: an address and port as /proc/net/tcp{,6} print them', () => {
  it('IPv4 word in machine byte order, port in 4 hex digits; v4-mapped in tcp6', () => {
    expect(procAddresses('127.0.0.1', 47_123, true)).toEqual({ tcp: '0100007F:B813', tcp6: '0000000000000000FFFF00000100007F:B813' });
    expect(procAddresses('::ffff:127.0.0.2', 80, true)).toEqual({ tcp: '0200007F:0050', tcp6: '0000000000000000FFFF00000200007F:0050' });
    expect(procAddresses('127.0.0.1', 47_123, false)).toEqual({ tcp: '7F000001:B813', tcp6: '00000000000000000000FFFF7F000001:B813' });
    expect(procAddresses('::1', 443, true)).toEqual({ tcp6: '00000000000000000000000001000000:01BB' });
    expect(procAddresses('10.0.0.300', 1, true)).toBeUndefined();
    expect(procAddresses('127.0.0.1', undefined, true)).toBeUndefined();
  });
});

describe('findOwners: the uid of the client end of a loopback connection in /proc/net/tcp', () => {
  const wanted = { local: '0100007F:9C40', remote: '0100007F:B813' };

  it("takes the client's row (local = the peer, remote = our listener), not the daemon's accepted side", () => {
    const owners = findOwners([HEADER, LISTENER, SERVER_SIDE, CLIENT_SIDE, TIME_WAIT].join('\n'), [wanted]);
    expect(owners.get(wanted)).toBe(1000);
  });

  it('skips rows without an inode (TIME_WAIT): they belong to no process', () => {
    const old = { local: '0100007F:9C41', remote: '0100007F:B813' };
    expect(findOwners([HEADER, TIME_WAIT].join('\n'), [old]).has(old)).toBe(false);
  });

  it("the same port from another loopback address (127.0.0.2) is another connection: it does not borrow this row's uid", () => {
    const borrowing = { local: '0200007F:9C40', remote: '0100007F:B813' };
    const attacker = CLIENT_SIDE.replace('0100007F:9C40', '0200007F:9C40').replace('  1000 ', '  1001 ');
    const owners = findOwners([HEADER, CLIENT_SIDE, attacker].join('\n'), [wanted, borrowing]);
    expect([owners.get(wanted), owners.get(borrowing)]).toEqual([1000, 1001]);
  });

  it('two live rows for one connection, owned by different users: neither uid (-1)', () => {
    const twin = CLIENT_SIDE.replace('  1000 ', '  1001 ').replace(' 3333 ', ' 4444 ');
    expect(findOwners([HEADER, CLIENT_SIDE, twin].join('\n'), [wanted]).get(wanted)).toBe(-1);
  });
});

describe('ProcPeerUidGate over a /proc of fixed rows', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  function procWith(rows: string[], tcp6: string[] = []): string {
    dir = mkdtempSync(join(tmpdir(), 'vault-peeruid-'));
    mkdirSync(join(dir, 'net'));
    writeFileSync(join(dir, 'net', 'tcp'), [HEADER, ...rows].join('\n') + '\n');
    writeFileSync(join(dir, 'net', 'tcp6'), [HEADER, ...tcp6].join('\n') + '\n');
    return dir;
  }
  // The fixture rows are little-endian, as on x86 and arm64 Linux: every gate here reads them so.
  const gateOf = (ownUid: number, proc: string) => new ProcPeerUidGate(ownUid, proc, undefined, true);
  const socket = (remotePort: number, remoteAddress = '127.0.0.1') => ({ remoteAddress, remotePort, localAddress: '127.0.0.1', localPort: 47_123 });

  it("allows the daemon's own uid and refuses another's, once per connection", async () => {
    const proc = procWith([LISTENER, SERVER_SIDE, CLIENT_SIDE]);
    const own = gateOf(1000, proc);
    const s = socket(40_000);
    own.admit(s);
    expect(own.decided(s)).toBeUndefined(); // being read
    expect(await own.decide(s)).toEqual({ allowed: true, uid: 1000 });
    expect(own.decided(s)).toEqual({ allowed: true, uid: 1000 });
    // Decided: a new row for the same connection changes nothing (keep-alive reuses the decision).
    writeFileSync(join(proc, 'net', 'tcp'), HEADER);
    expect(await own.decide(s)).toEqual({ allowed: true, uid: 1000 });

    const other = gateOf(1001, procWith([CLIENT_SIDE]));
    expect(await other.decide(socket(40_000))).toEqual({ allowed: false, uid: 1000 });
  });

  it('finds an IPv6 client socket connected to our IPv4 listener in tcp6 (v4-mapped)', async () => {
    const mapped = '   0: 0000000000000000FFFF00000100007F:9C40 0000000000000000FFFF00000100007F:B813 01 00000000:00000000 00:00000000 00000000  1000        0 5555 1 0000000000000000 20 4 0 10 -1';
    expect(await gateOf(1000, procWith([LISTENER], [mapped])).decide(socket(40_000))).toEqual({ allowed: true, uid: 1000 });
  });

  it('refuses root when the daemon is not root (a host-network container\'s root looks the same)', async () => {
    const rootClient = CLIENT_SIDE.replace('  1000 ', '     0 ');
    expect(await gateOf(1000, procWith([rootClient])).decide(socket(40_000))).toEqual({ allowed: false, uid: 0 });
    expect(await gateOf(0, procWith([rootClient])).decide(socket(40_000))).toEqual({ allowed: true, uid: 0 });
  });

  it('refuses what it cannot decide: no row, an unreadable /proc, a peer that is not loopback or has no port', async () => {
    expect(await gateOf(1000, procWith([LISTENER])).decide(socket(40_000))).toEqual({ allowed: false });
    expect(await gateOf(1000, '/nonexistent-proc').decide(socket(40_000))).toEqual({ allowed: false });
    const gate = gateOf(1000, procWith([CLIENT_SIDE]));
    expect(await gate.decide(socket(40_000, '10.0.0.5'))).toEqual({ allowed: false });
    expect(await gate.decide({ remoteAddress: '127.0.0.1', localAddress: '127.0.0.1', localPort: 47_123 })).toEqual({ allowed: false });
  });

  it('decides every connection accepted in the same turn with the same read', async () => {
    const second = CLIENT_SIDE.replace('0100007F:9C40', '0100007F:9C42').replace('  1000 ', '  1001 ');
    const gate = gateOf(1000, procWith([CLIENT_SIDE, second]));
    const [a, b] = await Promise.all([gate.decide(socket(40_000)), gate.decide(socket(40_002))]);
    expect([a, b]).toEqual([
      { allowed: true, uid: 1000 },
      { allowed: false, uid: 1001 },
    ]);
  });
});

describe('canTellPeerUids', () => {
  it('only Linux with a readable /proc/net/tcp can tell', () => {
    expect(canTellPeerUids('darwin')).toBe(false);
    expect(canTellPeerUids('win32')).toBe(false);
    expect(canTellPeerUids('linux', '/nonexistent-proc')).toBe(false);
    expect(canTellPeerUids('linux', '/proc')).toBe(true);
  });
});

/** The machine's real gate, with the daemon's uid as given: this process's own, or someone else's. */
function realGate(ownUid: number): PeerUidGate & { admitted: number } {
  const inner = new ProcPeerUidGate(ownUid);
  const gate = {
    admitted: 0,
    admit(socket: object) {
      gate.admitted++;
      inner.admit(socket);
    },
    decided: (socket: object): PeerUidDecision | undefined => inner.decided(socket),
    decide: (socket: object) => inner.decide(socket),
  };
  return gate;
}

function send(port: number, path: string, headers: Record<string, string>, agent: Agent | false = false, method = 'GET') {
  return new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers: { host: `127.0.0.1:${port}`, ...headers }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.runIf(canTellPeerUids())('credential listeners serve only the daemon’s own uid (real connections, Linux)', () => {
  const me = process.getuid!();
  const someoneElse = me + 4242;

  it.each([true, false])('the container route (fast path %s): 403 USER_NOT_ALLOWED to another uid even with the right token; served to our own', async (fastPath) => {
    const h = createHarness();
    const { session } = await h.start();
    const seen: Record<string, unknown> = {};
    for (const [who, ownUid] of [
      ['another uid', someoneElse],
      ['own uid', me],
    ] as const) {
      let port = 0;
      const app = buildServer({ sessions: h.registry, port: () => port, audit: h.audit, fastPath, peerUids: realGate(ownUid) });
      await app.listen({ host: '127.0.0.1', port: 0 });
      port = (app.server.address() as AddressInfo).port;
      try {
        const res = await send(port, `/creds/${session.id}`, { authorization: session.token });
        seen[who] = { status: res.status, type: res.headers['content-type'], body: JSON.parse(res.body) };
      } finally {
        await app.close();
      }
    }
    expect(seen).toEqual({
      'another uid': { status: 403, type: 'application/json; charset=utf-8', body: { Code: 'USER_NOT_ALLOWED', Message: USER_NOT_ALLOWED_MESSAGE } },
      'own uid': { status: 200, type: 'application/json', body: expect.objectContaining({ AccessKeyId: expect.stringMatching(/^ASIAFAKE/) }) },
    });
    expect(session.requestsServed).toBe(1);
  });

  it.each([true, false])('IMDS (fast path %s): another uid gets no token, no role, no credentials; our own uid is served', async (fastPath) => {
    const h = createHarness();
    const { session } = await h.start({ kind: 'imds' });
    const seen: Record<string, unknown> = {};
    for (const [who, ownUid] of [
      ['another uid', someoneElse],
      ['own uid', me],
    ] as const) {
      let port = 0;
      const app = buildImdsServer(session, { port: () => port, audit: h.audit, clock: h.clock, fastPath, peerUids: realGate(ownUid) });
      await app.listen({ host: '127.0.0.1', port: 0 });
      port = (app.server.address() as AddressInfo).port;
      try {
        const put = await send(port, '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, false, 'PUT');
        // Another uid has no token to send: it tries a forged one.
        const token = put.status === 200 ? put.body : 'forged.token';
        const role = await send(port, '/latest/meta-data/iam/security-credentials/', { 'x-aws-ec2-metadata-token': token });
        const creds = await send(port, '/latest/meta-data/iam/security-credentials/account-a', { 'x-aws-ec2-metadata-token': token });
        const codeOf = (body: string) => (body.startsWith('{') ? (JSON.parse(body) as { Code: string }).Code : body.length > 0 ? 'text' : 'empty');
        seen[who] = [put, role, creds].map((r) => `${r.status} ${codeOf(r.body)}`);
      } finally {
        await app.close();
      }
    }
    expect(seen).toEqual({
      'another uid': ['403 USER_NOT_ALLOWED', '403 USER_NOT_ALLOWED', '403 USER_NOT_ALLOWED'],
      'own uid': ['200 text', '200 text', '200 Success'],
    });
    expect(session.requestsServed).toBe(1);
  });

  it('decides once per connection: 20 keep-alive requests, one decision, all served by the fast path', async () => {
    const h = createHarness();
    const { session } = await h.start();
    let port = 0;
    const gate = realGate(me);
    const app = buildServer({ sessions: h.registry, port: () => port, audit: h.audit, peerUids: gate });
    // Fastify traces every route handler it runs; the fast path runs none.
    let fastifyRequests = 0;
    const count = () => {
      fastifyRequests++;
    };
    const channel = tracingChannel('fastify.request.handler');
    channel.start.subscribe(count);
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 20; i++) expect((await send(port, `/creds/${session.id}`, { authorization: session.token }, agent)).status).toBe(200);
      expect(gate.admitted).toBe(1);
      expect(session.requestsServed).toBe(20);
      expect(fastifyRequests).toBe(0);
    } finally {
      channel.start.unsubscribe(count);
      agent.destroy();
      await app.close();
    }
  });

  it('a refused connection is closed after its 403', async () => {
    const h = createHarness();
    const { session } = await h.start();
    let port = 0;
    const gate = realGate(someoneElse);
    const app = buildServer({ sessions: h.registry, port: () => port, audit: h.audit, peerUids: gate });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await send(port, `/creds/${session.id}`, { authorization: session.token }, agent);
      expect(first.status).toBe(403);
      expect(first.headers.connection).toBe('close');
      expect((await send(port, `/creds/${session.id}`, { authorization: session.token }, agent)).status).toBe(403);
      expect(gate.admitted).toBe(2);
      expect(h.log.records().filter((r) => r.event === 'peer-user-refused')).toHaveLength(2);
    } finally {
      agent.destroy();
      await app.close();
    }
  });
});
