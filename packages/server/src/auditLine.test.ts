import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, openLogFile } from './logging.js';
import type { PeerPidResolver } from './peerPid.js';
import type { Session } from './sessions/session.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const session = { id: 'a1b2c3d4e5f6', profile: 'account-a' } as unknown as Session;

/** A pid lookup that settles when the test says so. */
function pendingPids(): PeerPidResolver & { settle: (pid: number) => void } {
  let settle: (pid: number) => void = () => undefined;
  const result = new Promise<number>((resolve) => (settle = resolve));
  return { lookup: () => result, settle: (pid) => settle(pid) };
}

/** Every line of the log file, parsed, with pino's own lines for the same bindings alongside. */
async function writeBoth(
  write: (pair: { direct: (pids: PeerPidResolver | false) => AuditLog; viaPino: (pids: PeerPidResolver | false) => AuditLog }) => Promise<void>,
): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'vault-audit-'));
  dirs.push(dir);
  const log = openLogFile(join(dir, 'daemon.log'));
  // `direct` is the daemon's (handed openLogFile's stream); `viaPino` writes through child loggers.
  await write({ direct: (pids) => new AuditLog(log.logger, pids, log.stream), viaPino: (pids) => new AuditLog(log.logger, pids) });
  await log.close();
  return readFileSync(join(dir, 'daemon.log'), 'utf8').trim().split('\n');
}

/** A line without its time, which differs between two lines written a moment apart. */
const timeless = (line: string) => line.replace(/"time":\d+/, '"time":0');

describe('the audit log line for credentials served', () => {
  it("is, byte for byte, the line pino writes for the same child logger (a pino whose line changed fails here)", async () => {
    const socket = { remoteAddress: '127.0.0.1', remotePort: 40_001 };
    const lines = await writeBoth(async ({ direct, viaPino }) => {
      direct(false).credentialsServed(socket, session, 'ecs-role', 'arn:aws:iam::222222222222:role/x');
      viaPino(false).credentialsServed({ ...socket }, session, 'ecs-role', 'arn:aws:iam::222222222222:role/x');
    });
    expect(lines).toHaveLength(2);
    expect(timeless(lines[0]!)).toBe(timeless(lines[1]!));
    expect(JSON.parse(lines[0]!)).toEqual({
      level: 30,
      time: expect.any(Number),
      pid: process.pid,
      audit: 'credentials-served',
      session: 'a1b2c3d4e5f6',
      profile: 'account-a',
      route: 'ecs-role',
      roleArn: 'arn:aws:iam::222222222222:role/x',
      client: { address: '127.0.0.1', port: 40_001 },
      msg: 'credentials served',
    });
  });

  it('a keep-alive connection repeats its line; lines waiting on a pid lookup say when they were served, as pino would', async () => {
    const fast = pendingPids();
    const slow = pendingPids();
    const lines = await writeBoth(async ({ direct, viaPino }) => {
      const a = direct(fast);
      const b = viaPino(slow);
      const socketA = { remoteAddress: '127.0.0.1', remotePort: 40_002 };
      const socketB = { remoteAddress: '127.0.0.1', remotePort: 40_002 };
      for (let i = 0; i < 3; i++) {
        a.credentialsServed(socketA, session, 'imds');
        b.credentialsServed(socketB, session, 'imds');
      }
      fast.settle(4242);
      slow.settle(4242);
      await Promise.all([a.drain(), b.drain()]);
      a.credentialsServed(socketA, session, 'imds');
      b.credentialsServed(socketB, session, 'imds');
    });
    expect(lines).toHaveLength(8);
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.filter((p) => p.servedAt !== undefined)).toHaveLength(6);
    for (const p of parsed) {
      expect(p).toMatchObject({ level: 30, pid: process.pid, audit: 'credentials-served', session: 'a1b2c3d4e5f6', route: 'imds', msg: 'credentials served' });
      expect(p.client).toEqual({ address: '127.0.0.1', port: 40_002, pid: 4242 });
    }
    // Two kinds of line (served later, with servedAt; served at once), each the same bytes from both
    // writers once the times are set aside.
    const shape = (line: string) => timeless(line).replace(/"servedAt":"[^"]+"/, '"servedAt":"T"');
    expect(new Set(lines.map(shape)).size).toBe(2);
  });
});
