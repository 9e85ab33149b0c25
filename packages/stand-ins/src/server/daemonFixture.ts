import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, systemClock, type Clock } from '@vault/core';
import { DaemonClient, ManualScheduler, startDaemon, type Daemon, type StartDaemonOptions } from '@vault/server';
import { FakeSourceFactory } from './fakes.js';
import { captureLogger } from './harness.js';

const HOUR = 3_600_000;

/** A short temporary state directory (Unix socket paths are limited to ~104 bytes). */
export function tempStateDir(): { root: string; stateDir: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'vd-'));
  return { root, stateDir: join(root, 'daemon'), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * What a test started, undone after it in reverse order. A test file makes one and runs it after
 * each test: `const cleanups = new Cleanups(); afterEach(() => cleanups.run());`.
 */
export class Cleanups {
  private readonly pending: Array<() => Promise<void> | void> = [];

  push(undo: () => Promise<void> | void): void {
    this.pending.push(undo);
  }

  /** A fixture (a daemon, a stand-in) closed after the test. */
  track<T extends { close(): Promise<void> }>(fixture: T): T {
    this.push(() => fixture.close());
    return fixture;
  }

  /** A temporary state directory removed after the test. */
  tempStateDir(): ReturnType<typeof tempStateDir> {
    const dir = tempStateDir();
    this.push(dir.cleanup);
    return dir;
  }

  async run(): Promise<void> {
    while (this.pending.length > 0) await this.pending.pop()!();
  }
}

export interface DaemonFixtureOptions extends Partial<StartDaemonOptions> {
  /** Use a ManualClock and ManualScheduler (default) or real time. */
  manualTime?: boolean;
  captureLog?: boolean;
}

/** A real daemon (TCP listener and Unix socket) over fake sources, in a temporary state dir. */
export async function startTestDaemon(options: DaemonFixtureOptions = {}) {
  const dir = tempStateDir();
  const manual = options.manualTime ?? true;
  const clock: Clock = manual ? new ManualClock(Date.now()) : systemClock;
  const scheduler = manual ? new ManualScheduler(clock as ManualClock) : undefined;
  const factory = new FakeSourceFactory({ clock, roleDurationMs: HOUR, mfaDurationMs: 8 * HOUR });
  const log = options.captureLog === false ? undefined : captureLogger();
  const daemon: Daemon = await startDaemon({
    stateDir: dir.stateDir,
    sourceFactory: factory,
    clock,
    ...(scheduler ? { scheduler } : {}),
    random: () => 0.5,
    ...(log ? { logger: log.logger } : {}),
    handleSignals: false,
    peerPids: false,
    ...options,
  });
  const client = new DaemonClient({ stateDir: dir.stateDir, timeoutMs: 5_000 });
  return {
    daemon,
    client,
    factory,
    clock,
    scheduler,
    log,
    stateDir: dir.stateDir,
    async close() {
      await daemon.stop();
      dir.cleanup();
    },
  };
}
