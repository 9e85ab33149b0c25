import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { World } from '../support/world.js';

/**
 * Where the daemon keeps its control socket. With XDG_RUNTIME_DIR set it is `$XDG_RUNTIME_DIR/vault`
 * (a per-user tmpfs that containers and VMs sharing HOME do not see); `~/.vault/daemon` is the
 * fallback without one, and the place a daemon of the previous version still runs from.
 */
let world: World;
let runtime: string;
/** The shell of the user on the host: XDG_RUNTIME_DIR set. */
let host: NodeJS.ProcessEnv;
/** A process that sees the same HOME and nothing else: a devcontainer or VM bind-mounting HOME. */
const sharedHome: NodeJS.ProcessEnv = { XDG_RUNTIME_DIR: undefined };
const oldPlace = () => join(world.home, '.vault', 'daemon');
const newPlace = () => join(runtime, 'vault');

function pidIn(dir: string): number {
  return Number.parseInt(readFileSync(join(dir, 'daemon.pid'), 'utf8'), 10);
}

/** Until the process has ended (a zombie counts: nobody may reap a detached daemon here). */
async function gone(pid: number): Promise<void> {
  for (;;) {
    let state: string;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return;
    }
    if (state === 'Z' || state === 'X') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function stopEverywhere(): Promise<void> {
  await world.vault(['server', 'stop'], host);
  await world.vault(['server', 'stop'], sharedHome);
}

beforeAll(async () => {
  world = await World.create('file');
  runtime = mkdtempSync(join(tmpdir(), 'vault-run-'));
  chmodSync(runtime, 0o700);
  host = { XDG_RUNTIME_DIR: runtime };
  const added = await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
  expect(added.code, added.stderr).toBe(0);
});

afterEach(stopEverywhere);

afterAll(async () => {
  if (world) {
    await stopEverywhere();
    const leaks = world.leaks();
    await world.close();
    rmSync(runtime, { recursive: true, force: true });
    expect(leaks).toEqual([]);
  }
});

describe('the control socket lives in XDG_RUNTIME_DIR, out of reach of whatever shares HOME', () => {
  it('a process with the same HOME but not the XDG_RUNTIME_DIR finds no daemon to talk to', async () => {
    const started = await world.vault(['server', 'start'], host);
    expect(started.code, started.stderr).toBe(0);

    const fromContainer = await world.vault(['server', 'status'], sharedHome);
    expect(fromContainer.stdout).toBe('vault daemon: not running\n');
    expect(fromContainer.code).toBe(3);
    const otherRuntime = mkdtempSync(join(tmpdir(), 'vault-run-other-'));
    try {
      chmodSync(otherRuntime, 0o700);
      const fromOtherSession = await world.vault(['server', 'status'], { XDG_RUNTIME_DIR: otherRuntime });
      expect(fromOtherSession.stdout).toBe('vault daemon: not running\n');
    } finally {
      rmSync(otherRuntime, { recursive: true, force: true });
    }

    expect(existsSync(join(newPlace(), 'control.sock'))).toBe(true);
    expect(existsSync(join(oldPlace(), 'control.sock'))).toBe(false);
    const fromHost = await world.vault(['server', 'status'], host);
    expect(fromHost.stdout).toContain(`state: ${newPlace()}\n`);
  });
});

describe('upgrading: a daemon whose state is in ~/.vault/daemon', () => {
  it('keeps serving commands that now look in XDG_RUNTIME_DIR first, until it is stopped', async () => {
    // The place the previous version used (and this one, without XDG_RUNTIME_DIR).
    expect((await world.vault(['server', 'start'], sharedHome)).code).toBe(0);
    const oldPid = pidIn(oldPlace());
    const session = await world.vault(['session', 'start', 'central-account', '-t', '123456', '--format', 'json'], sharedHome);
    expect(session.code, session.stderr).toBe(0);
    const { id } = JSON.parse(session.stdout) as { id: string };

    const status = await world.vault(['server', 'status'], host);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`pid: ${oldPid}\n`);
    expect(status.stdout).toContain(`state: ${oldPlace()} (`);
    const listed = await world.vault(['session', 'ls'], host);
    expect(listed.stdout).toContain(id);
    expect(existsSync(join(newPlace(), 'daemon.pid')), 'no second daemon in the new place').toBe(false);

    const stopped = await world.vault(['server', 'stop'], host);
    expect(stopped.stderr).toBe('vault daemon stopped\n');
    expect(existsSync(join(oldPlace(), 'daemon.pid'))).toBe(false);
    expect((await world.vault(['server', 'start'], host)).code).toBe(0);
    expect(existsSync(join(newPlace(), 'control.sock'))).toBe(true);
  });

  it('sessions a killed daemon recorded there are restored by the next daemon, in XDG_RUNTIME_DIR, once', async () => {
    expect((await world.vault(['server', 'start'], sharedHome)).code).toBe(0);
    const session = await world.vault(['session', 'start', 'central-account', '-t', '123456', '--format', 'json'], sharedHome);
    expect(session.code, session.stderr).toBe(0);
    const { id } = JSON.parse(session.stdout) as { id: string };
    const oldPid = pidIn(oldPlace());
    process.kill(oldPid, 'SIGKILL');
    await gone(oldPid);

    const listed = await world.vault(['session', 'ls'], host);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(id);
    expect(listed.stderr).toContain(`the daemon (pid ${oldPid}) had ended without stopping`);
    expect(pidIn(newPlace())).not.toBe(oldPid);
    expect(existsSync(join(oldPlace(), 'daemon.pid')), "the killed daemon's leftovers are removed").toBe(false);
    expect(existsSync(join(oldPlace(), 'control.sock'))).toBe(false);

    // Moved, not copied: a daemon started in the old place again finds nothing to restore.
    expect((await world.vault(['server', 'stop'], host)).code).toBe(0);
    expect((await world.vault(['server', 'start'], sharedHome)).code).toBe(0);
    const again = await world.vault(['session', 'ls'], sharedHome);
    expect(again.stdout).not.toContain(id);
  });
});
