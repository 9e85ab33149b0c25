import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { daemonPaths } from '../paths.js';
import { Cleanups, startTestDaemon } from '@vault/stand-ins/server';
import { DaemonClient } from './daemonClient.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());
const track = <T extends { close(): Promise<void> }>(fixture: T): T => cleanups.track(fixture);
const tempDir = () => cleanups.tempStateDir();

describe('DaemonClient', () => {
  it('DAEMON_UNAVAILABLE when the socket is absent', async () => {
    const dir = tempDir();
    const client = new DaemonClient({ stateDir: dir.stateDir });
    expect(await client.isRunning()).toBe(false);
    await expect(client.status()).rejects.toMatchObject({ code: 'DAEMON_UNAVAILABLE', message: expect.stringContaining('is not running') });
  });

  it('DAEMON_UNAVAILABLE when the socket is dead (a file nobody listens on)', async () => {
    const dir = tempDir();
    mkdirSync(dir.stateDir, { mode: 0o700 });
    writeFileSync(daemonPaths(dir.stateDir).socket, '');
    const client = new DaemonClient({ stateDir: dir.stateDir });
    await expect(client.listSessions()).rejects.toMatchObject({ code: 'DAEMON_UNAVAILABLE' });
  });

  it('shutdown() returns once the daemon has stopped: its pid file and socket are gone, even when stopping takes a while', async () => {
    // A keyring that takes its time to forget the sessions (a loaded machine, a slow Secret Service).
    const slowStore = {
      load: async () => ({ records: [], skipped: [] }),
      save: () => new Promise<void>((resolve) => setTimeout(resolve, 400)),
      clear: async () => false,
    };
    const f = track(await startTestDaemon({ sessionStore: slowStore }));
    await f.client.createSession({ profile: 'account-a', kind: 'ecs' });
    await f.client.shutdown();
    expect(existsSync(f.daemon.paths.pidFile)).toBe(false);
    expect(existsSync(f.daemon.paths.socket)).toBe(false);
  });
});
