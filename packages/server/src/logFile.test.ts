import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { pbkdf2 } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLogFile } from './logging.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Occupies every libuv thread for a while, so an asynchronous write queued now lands late (a loaded machine). */
function busyThreadPool(): Promise<unknown> {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  return Promise.all(
    Array.from({ length: threads }, () => new Promise((resolve) => pbkdf2('x', 'y', 300_000, 32, 'sha256', resolve))),
  );
}

describe('the daemon log file', () => {
  it('holds every line once close() has resolved, even when a write was still in flight', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vault-log-'));
    dirs.push(dir);
    const path = join(dir, 'daemon.log');
    const log = openLogFile(path);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the file is open
    const busy = busyThreadPool();
    log.logger.info({ audit: 'session-stop' }, 'in flight when the daemon stops');
    log.logger.flush(); // starts an asynchronous write that queues behind the busy threads
    log.logger.info({ event: 'daemon-stopped' }, 'buffered');
    await log.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line).msg);
    expect(lines).toEqual(['in flight when the daemon stops', 'buffered']);
    await busy;
  });
});
