import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '@vault/core';
import { startDaemon, type Daemon } from '../daemon/startDaemon.js';
import { Cleanups, FakeSourceFactory, startTestDaemon } from '@vault/stand-ins/server';
import { ensureDaemon } from './ensureDaemon.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());
const track = <T extends { close(): Promise<void> }>(fixture: T): T => cleanups.track(fixture);
const tempDir = () => cleanups.tempStateDir();

function factory() {
  return new FakeSourceFactory({ clock: new ManualClock(Date.now()), mfaDurationMs: 8 * 3_600_000 });
}

describe('ensureDaemon', () => {
  const fakeChild = () => new EventEmitter() as unknown as ChildProcess;

  it('uses a running daemon without spawning', async () => {
    const f = track(await startTestDaemon());
    const spawner = vi.fn(() => fakeChild());
    const result = await ensureDaemon({ stateDir: f.stateDir, spawn: spawner });
    expect(result.started).toBe(false);
    expect(spawner).not.toHaveBeenCalled();
    expect((await result.client.status()).pid).toBe(process.pid);
  });

  it('spawns one when none runs, then polls the socket until it answers', async () => {
    const dir = tempDir();
    let daemon: Daemon | undefined;
    const result = await ensureDaemon({
      stateDir: dir.stateDir,
      spawn: () => {
        setTimeout(() => {
          void startDaemon({ stateDir: dir.stateDir, sourceFactory: factory(), handleSignals: false, peerPids: false }).then((d) => {
            daemon = d;
          });
        }, 100);
        return fakeChild();
      },
    });
    cleanups.push(() => daemon?.stop());
    expect(result.started).toBe(true);
    expect(await result.client.isRunning()).toBe(true);
  });

  it('reports a daemon that exits before answering, naming its log', async () => {
    const dir = tempDir();
    const child = fakeChild();
    // A timeout longer than the test's own (30 s): only noticing the exit can end this in time.
    const promise = ensureDaemon({
      stateDir: dir.stateDir,
      timeoutMs: 120_000,
      spawn: () => {
        setTimeout(() => child.emit('exit', 1, null), 20);
        return child;
      },
    });
    await expect(promise).rejects.toMatchObject({
      code: 'DAEMON_UNAVAILABLE',
      message: expect.stringContaining('exit code 1'),
      hint: expect.stringContaining(join(dir.stateDir, 'daemon.log')),
    });
  });

  it('gives up after the timeout', async () => {
    const dir = tempDir();
    await expect(ensureDaemon({ stateDir: dir.stateDir, spawn: () => undefined, timeoutMs: 300 })).rejects.toMatchObject({
      code: 'DAEMON_UNAVAILABLE',
      message: expect.stringContaining('did not answer'),
    });
  });
});
