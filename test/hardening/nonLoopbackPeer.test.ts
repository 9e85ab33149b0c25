import { request as httpRequest } from 'node:http';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedSession } from '@vault/server';
import { startTestDaemon } from '@vault/stand-ins/server';

/**
 * The loopback-peer guard itself. Linux lets a process bind a connection's source to one of the
 * machine's other addresses and still reach 127.0.0.1, so the listener really does see a peer that
 * is not loopback (endpointAbuse.test.ts shows that nothing outside the host reaches it at all).
 * Such a peer holding the right token and Host must still get no credential. The test needs a
 * non-loopback IPv4 address on this machine; without one it fails saying so (never a silent pass).
 */
const other = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

function get(port: number, path: string, headers: Record<string, string>, localAddress?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false, ...(localAddress ? { localAddress } : {}) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a peer that is not loopback', () => {
  let f: Awaited<ReturnType<typeof startTestDaemon>>;
  let session: CreatedSession;
  beforeAll(async () => {
    f = await startTestDaemon();
    session = await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
  });
  afterAll(async () => {
    await f?.close();
  });

  it('connecting to 127.0.0.1 from a non-loopback local address with the right token is refused: 403 PEER_NOT_ALLOWED', async () => {
    if (other === undefined) {
      throw new Error('this test needs a non-loopback IPv4 address on this machine (e.g. eth0) to connect from; it has none, so the peer guard would go untested');
    }
    const path = `/creds/${session.id}`;
    const headers = { authorization: session.token };
    expect((await get(f.daemon.port, path, headers)).status).toBe(200); // the same request from loopback
    const refused = await get(f.daemon.port, path, headers, other);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ Code: 'PEER_NOT_ALLOWED' });
    expect(refused.body).not.toMatch(/SecretAccessKey|AccessKeyId/);
    console.log(`FIGURE nonLoopbackPeer source=${other} status=${refused.status}`);
  });
});
