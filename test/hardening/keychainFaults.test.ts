import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cmdlineOf, findLeaks } from '../support/leaks.js';
import { World } from '../support/world.js';
import { expectOneLineError, runVault, type VaultRun } from './cli.js';

/**
 * Keychain faults, through the built CLI: no Secret Service at all, a locked keyring, a
 * keyring daemon that hangs, and one killed while vault waits on it. Each must be one line naming
 * the cause and the remedy (`--backend file`) within the keychain's 2 s bound plus process start,
 * a non-zero exit, and no native crash or stack trace. The suite runs its own D-Bus daemons and
 * gnome-keyring (never the one scripts/with-keyring.sh started for the rest of the tests).
 * It never skips: without dbus-daemon, dbus-send, gnome-keyring-daemon or a loadable keytar every
 * case fails, saying what to install (scripts/setup.sh installs all of them, as CI does).
 */
const KEYCHAIN_BOUND_MS = 2_000;
const REMEDY = '--backend file';
const KEYRING_PASSWORD = 'test-keyring-password';
const TOOLS = ['dbus-daemon', 'dbus-send', 'gnome-keyring-daemon'];

const missingTool = TOOLS.find((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
let keytarProblem: string | undefined;
try {
  createRequire(import.meta.url)('keytar');
} catch (error) {
  keytarProblem = String(error).split('\n')[0];
}
const missingPrerequisite = missingTool
  ? `${missingTool} is not installed (Debian: apt-get install dbus-daemon gnome-keyring, or run scripts/setup.sh)`
  : keytarProblem
    ? `keytar cannot be loaded (${keytarProblem}); install libsecret-1-dev and run npm ci (scripts/setup.sh does both)`
    : undefined;

let work: string;
let world: World;
let startupMs = 0;
const runs: VaultRun[] = [];
const figures: string[] = [];
const children: ChildProcess[] = [];

/** A D-Bus session bus of our own with nothing activatable: what is on it is what we start. */
async function privateBus(name: string): Promise<{ address: string; process: ChildProcess }> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'bus.conf');
  writeFileSync(
    conf,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=${dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
`,
  );
  const bus = spawn('dbus-daemon', ['--config-file', conf, '--nofork', '--print-address=1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(bus);
  bus.once('spawn', () => world.capture(`dbus-daemon (${name}) cmdline`, cmdlineOf(bus.pid)));
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    bus.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    bus.on('exit', (code) => reject(new Error(`dbus-daemon exited with ${code}`)));
  });
  return { address, process: bus };
}

function busCall(address: string, args: string[]): string {
  return execFileSync('dbus-send', [`--bus=${address}`, '--print-reply=literal', '--reply-timeout=2000', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** gnome-keyring-daemon on `address`, with a fresh "login" keyring created and unlocked with a password. */
async function keyringDaemon(address: string, name: string): Promise<ChildProcess> {
  const base = join(work, name, 'keyring');
  for (const d of ['home', 'data', 'config', 'cache', 'run']) mkdirSync(join(base, d), { recursive: true, mode: 0o700 });
  const daemon = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
    env: {
      PATH: process.env.PATH,
      HOME: join(base, 'home'),
      XDG_DATA_HOME: join(base, 'data'),
      XDG_CONFIG_HOME: join(base, 'config'),
      XDG_CACHE_HOME: join(base, 'cache'),
      XDG_RUNTIME_DIR: join(base, 'run'),
      DBUS_SESSION_BUS_ADDRESS: address,
    },
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  children.push(daemon);
  daemon.stdin!.end(KEYRING_PASSWORD);
  daemon.once('spawn', () => world.capture(`gnome-keyring-daemon (${name}) cmdline`, cmdlineOf(daemon.pid)));
  for (let i = 0; i < 100; i++) {
    try {
      if (busCall(address, ['--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', 'string:org.freedesktop.secrets']).includes('true')) {
        const collection = defaultCollection(address);
        if (collection !== '/' && collection !== '' && busCall(address, ['--dest=org.freedesktop.secrets', collection, 'org.freedesktop.DBus.Properties.Get', 'string:org.freedesktop.Secret.Collection', 'string:Locked']).includes('false')) {
          return daemon;
        }
      }
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('gnome-keyring-daemon did not come up with an unlocked default collection');
}

function defaultCollection(address: string): string {
  return busCall(address, ['--dest=org.freedesktop.secrets', '/org/freedesktop/secrets', 'org.freedesktop.Secret.Service.ReadAlias', 'string:default']).replace(/\s/g, '');
}

async function vault(args: string[], extra: NodeJS.ProcessEnv): Promise<VaultRun> {
  const run = await runVault(args, world.env({ AWS_VAULT_BACKEND: 'keychain', AWS_VAULT_FILE_PASSPHRASE: undefined, ...extra }), { timeoutMs: 30_000 });
  runs.push(run);
  if (args[0] !== 'export') world.capture(`vault ${args.join(' ')} #${runs.length} stdout`, run.stdout);
  world.capture(`vault ${args.join(' ')} #${runs.length} stderr`, run.stderr);
  world.capture(`vault ${args.join(' ')} #${runs.length} cmdline`, run.cmdline);
  return run;
}

function addEnv(): NodeJS.ProcessEnv {
  return { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey };
}

/** The three kinds of keychain access a command makes: a write, a listing, a read. */
async function everyAccess(extra: NodeJS.ProcessEnv): Promise<VaultRun[]> {
  return [await vault(['add', '--env', 'central-account'], { ...addEnv(), ...extra }), await vault(['list'], extra), await vault(['export', '--format', 'json', '-t', '123456', 'account-a'], extra)];
}

/** One line with the cause and the remedy, a non-zero exit, within the keychain bound plus process start. */
function expectKeychainFailure(run: VaultRun, cause: RegExp, label: string): string {
  const line = expectOneLineError(run, cause);
  expect(line).toContain(REMEDY);
  // The requirement (README, SECURITY.md): with no keychain reachable the backend fails within 2 s.
  // We time the whole process, so add what starting node and the CLI costs here (measured in
  // beforeAll) and 1 s of slack for a loaded, shared CI machine (the hung case measures ~80 ms
  // past 2 s + start-up on an idle one). The slack stays below a second 2 s wait: a command that
  // waited on the keychain twice, or a timeout that grew, fails this.
  expect(run.ms, `${label}: vault took ${run.ms} ms; the keychain bound is ${KEYCHAIN_BOUND_MS} ms plus ${startupMs} ms start-up`).toBeLessThan(
    KEYCHAIN_BOUND_MS + startupMs + 1_000,
  );
  figures.push(`FIGURE keychainFaults case="${label}" cmd="${run.args[0]}" exit=${run.code} ms=${run.ms} line=${JSON.stringify(line)}`);
  return line;
}

describe('keychain backend faults through the built CLI: one line with cause and remedy, within the 2 s bound', () => {
  beforeAll(async () => {
    if (missingPrerequisite) throw new Error(`keychainFaults cannot run: ${missingPrerequisite}`);
    work = mkdtempSync(join(tmpdir(), 'vault-kc-'));
    world = await World.create('keychain');
    // What starting the CLI costs here, to bound the keychain's own time.
    const started = performance.now();
    for (let i = 0; i < 3; i++) await runVault(['--version'], world.env());
    startupMs = Math.round((performance.now() - started) / 3);
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    console.log(`FIGURE keychainFaults processStartMs=${startupMs}`);
    for (const line of figures) console.log(line);
    if (world) {
      const leaks = [...world.leaks(), ...findLeaks([KEYRING_PASSWORD], world.captured, [world.home])];
      await world.close();
      expect(leaks).toEqual([]);
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('no D-Bus session at all (DBUS_SESSION_BUS_ADDRESS unset)', async () => {
    for (const run of await everyAccess({ DBUS_SESSION_BUS_ADDRESS: undefined })) {
      expectKeychainFailure(run, /^vault: no D-Bus session for the keychain backend \(DBUS_SESSION_BUS_ADDRESS is not set\)/, 'no D-Bus session');
    }
  });

  it('a D-Bus address whose bus is gone', async () => {
    const dead = `unix:path=${join(work, 'no-such-bus')}`;
    for (const run of await everyAccess({ DBUS_SESSION_BUS_ADDRESS: dead })) {
      expectKeychainFailure(run, /^vault: cannot connect to the D-Bus session bus at unix:path=.* \(ENOENT\)/, 'dead bus address');
    }
  });

  it('a bus with no Secret Service on it', async () => {
    const { address } = await privateBus('empty');
    for (const run of await everyAccess({ DBUS_SESSION_BUS_ADDRESS: address })) {
      expectKeychainFailure(run, /^vault: no Secret Service on the D-Bus session bus/, 'no Secret Service');
    }
  });

  it('a locked keyring (an item stored, then the collection locked): every access says locked', async () => {
    const { address } = await privateBus('locked');
    await keyringDaemon(address, 'locked');
    const env = { DBUS_SESSION_BUS_ADDRESS: address };
    const stored = await vault(['add', '--env', 'central-account'], { ...addEnv(), ...env });
    expect(stored.code, stored.stderr).toBe(0);
    const collection = defaultCollection(address);
    busCall(address, ['--dest=org.freedesktop.secrets', '/org/freedesktop/secrets', 'org.freedesktop.Secret.Service.Lock', `array:objpath:${collection}`]);
    // The collection says it is locked before vault is asked (once, on a loaded machine, the next
    // `vault add` still got through).
    await vi.waitFor(
      () => expect(busCall(address, ['--dest=org.freedesktop.secrets', collection, 'org.freedesktop.DBus.Properties.Get', 'string:org.freedesktop.Secret.Collection', 'string:Locked'])).toContain('true'),
      { timeout: 5_000 },
    );
    for (const run of await everyAccess(env)) {
      expectKeychainFailure(run, /^vault: the keychain is locked/, 'locked');
    }
  });

  it('a keyring daemon that stops answering (SIGSTOP), then one killed (SIGKILL) while vault waits on it', async () => {
    const { address } = await privateBus('killed');
    const daemon = await keyringDaemon(address, 'killed');
    const env = { DBUS_SESSION_BUS_ADDRESS: address };
    const stored = await vault(['add', '--env', 'central-account'], { ...addEnv(), ...env });
    expect(stored.code, stored.stderr).toBe(0);

    daemon.kill('SIGSTOP');
    for (const run of await everyAccess(env)) {
      expectKeychainFailure(run, /^vault: (the D-Bus session bus or )?the Secret Service did not answer (in time|within 2000 ms)/, 'hung (SIGSTOP)');
    }

    // Killed mid-run: vault's calls are queued on the stopped daemon when it is killed.
    const pending = vault(['list'], env);
    await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, startupMs + 300)));
    daemon.kill('SIGKILL');
    expectKeychainFailure(await pending, /^vault: (the Secret Service failed|no Secret Service|the Secret Service did not answer|the keychain failed)/, 'killed mid-run (SIGKILL)');
    // And afterwards, with the name gone from the bus:
    for (const run of await everyAccess(env)) {
      expectKeychainFailure(run, /^vault: no Secret Service on the D-Bus session bus/, 'killed, afterwards');
    }
  });
});
