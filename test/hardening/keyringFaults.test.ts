import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialKeyring, FileKeyring } from '@vault/core';
import type { IssuedKey } from '@vault/stand-ins';
import { findLeaks } from '../support/leaks.js';
import { World } from '../support/world.js';
import { expectOneLineError, runVault, type VaultRun } from './cli.js';

/**
 * Keyring faults, file backend, through the built CLI: concurrent writers and readers,
 * damaged items, a wrong passphrase, a full disk and a read-only directory. Each failure is one
 * line and leaves every other item readable; nothing is lost, nothing is corrupted.
 */
const PASSPHRASE = 'e2e-file-passphrase'; // World's, for the file backend
const WRONG_PASSPHRASE = 'not-the-passphrase-at-all';
const WRITERS = 50;
const READERS = 3;

let world: World;
const keys = new Map<string, IssuedKey>();
const runs: VaultRun[] = [];
const figures: string[] = [];
const mounts: string[] = [];

function profile(i: number): string {
  return `p${String(i).padStart(2, '0')}`;
}

function keyDir(): string {
  return join(world.home, '.awsvault', 'keys');
}

async function vault(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<VaultRun> {
  const run = await runVault(args, world.env(extra));
  runs.push(run);
  // `export` prints credentials on stdout by design (credential_process reads them there).
  if (args[0] !== 'export') world.capture(`vault ${args.join(' ')} #${runs.length} stdout`, run.stdout);
  world.capture(`vault ${args.join(' ')} #${runs.length} stderr`, run.stderr);
  world.capture(`vault ${args.join(' ')} #${runs.length} cmdline`, run.cmdline);
  return run;
}

function add(name: string, key: IssuedKey, extra: NodeJS.ProcessEnv = {}): Promise<VaultRun> {
  return vault(['add', '--env', name], { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey, ...extra });
}

/** Reads an item the way the CLI stores it, in this process: exactly the key that was added? */
async function readBack(name: string, dir = keyDir()): Promise<IssuedKey | undefined> {
  const stored = await new CredentialKeyring(new FileKeyring({ dir, passphrase: async () => PASSPHRASE })).get(name);
  return stored && { accessKeyId: stored.accessKeyId, secretAccessKey: stored.secretAccessKey };
}

/** Decrypts each item (PBKDF2 runs on libuv's threads, so in parallel) and compares it with what was added. */
async function expectAllReadable(names: string[], dir = keyDir()): Promise<void> {
  const read = await Promise.all(names.map((name) => readBack(name, dir)));
  names.forEach((name, i) => expect(read[i], name).toEqual({ accessKeyId: keys.get(name)!.accessKeyId, secretAccessKey: keys.get(name)!.secretAccessKey }));
}

/** Items deliberately damaged by the tests below (repaired ones are taken off again). */
const damaged = new Set<string>();
const allWriters = () => Array.from({ length: WRITERS }, (_, i) => profile(i));

function expectPrivate(dir: string): void {
  expect((statSync(dir).mode & 0o777).toString(8), dir).toBe('700');
  for (const name of readdirSync(dir)) {
    const stat = statSync(join(dir, name));
    if (stat.isFile()) expect((stat.mode & 0o777).toString(8), `${dir}/${name}`).toBe('600');
  }
}

/** A small tmpfs of our own. Needs root (CI runs as root); without it the test fails saying so. */
function smallTmpfs(sizeKiB: number, why: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vault-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const reason = String((error as { stderr?: Buffer }).stderr ?? error).trim().split('\n')[0];
    throw new Error(`the ${why} test needs root to mount a small tmpfs (CI runs as root); mount -t tmpfs refused: ${reason}`);
  }
  mounts.push(dir);
  return dir;
}

/**
 * `vault export` and `vault exec` of an MFA-protected role whose key sits in a keyring that takes no
 * writes: STS answers, the MFA session cannot be cached, and the command must still succeed.
 */
async function expectCredentialsWithoutCache(env: NodeJS.ProcessEnv): Promise<void> {
  const exported = await vault(['export', '--format', 'json', '-t', '123456', 'account-a'], env);
  expect(exported.code, exported.stderr).toBe(0);
  expect(JSON.parse(exported.stdout)).toMatchObject({ Version: 1, AccessKeyId: expect.stringMatching(/^ASIA/) });
  // ... and says, in one line, why the next command will ask for an MFA code again.
  expect(exported.stderr).toMatch(/^vault: note: could not cache the MFA session for profile central-account in the keyring \(could not write the file keyring item .*\); using it without caching\n/);
  const executed = await vault(['exec', '-t', '123456', 'account-a', '--', 'sh', '-c', 'test -n "$AWS_SESSION_TOKEN"'], env);
  expect(executed.code, executed.stderr).toBe(0);
}

describe('file backend faults through the built CLI: one line each, nothing else lost', () => {
  beforeAll(async () => {
    world = await World.create('file');
    const lines: string[] = [];
    for (let i = 0; i < WRITERS; i++) lines.push(`[profile ${profile(i)}]`, 'region = us-east-1', '');
    for (let i = 0; i < READERS; i++) lines.push(`[profile r${i}]`, 'region = us-east-1', '');
    for (const name of ['f0', 'f1', 'f2', 'f3', 'ro0', 'ro1', 'ro2']) lines.push(`[profile ${name}]`, 'region = us-east-1', '');
    appendFileSync(join(world.home, '.aws', 'config'), `\n${lines.join('\n')}\n`);
    for (let i = 0; i < WRITERS; i++) keys.set(profile(i), world.sts.addUser({ arn: `arn:aws:iam::111111111111:user/writer-${i}` }));
    for (let i = 0; i < READERS; i++) keys.set(`r${i}`, world.sts.addUser({ arn: `arn:aws:iam::111111111111:user/reader-${i}` }));
    for (const name of ['f0', 'f1', 'f2', 'f3', 'ro0', 'ro1', 'ro2', 'late']) keys.set(name, world.sts.addUser({ arn: `arn:aws:iam::111111111111:user/${name}` }));
    for (let i = 0; i < READERS; i++) expect((await add(`r${i}`, keys.get(`r${i}`)!)).code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    for (const dir of mounts.reverse()) {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // already gone
      }
    }
    for (const line of figures) console.log(line);
    if (world) {
      const leaks = [...world.leaks(), ...findLeaks([PASSPHRASE, WRONG_PASSPHRASE, ...[...keys.values()].map((k) => k.secretAccessKey)], world.captured, [world.home])];
      await world.close();
      expect(leaks).toEqual([]);
    }
  });

  it(`${WRITERS} concurrent \`vault add\` of different profiles, with concurrent \`vault list\` and \`vault export\`: nothing lost, nothing corrupted`, async () => {
    const started = performance.now();
    const writers = Array.from({ length: WRITERS }, (_, i) => add(profile(i), keys.get(profile(i))!));
    const listers = Array.from({ length: 6 }, () => vault(['list']));
    const exporters = Array.from({ length: 4 }, (_, i) => vault(['export', '--format', 'json', `r${i % READERS}`]));
    const [added, listed, exported] = await Promise.all([Promise.all(writers), Promise.all(listers), Promise.all(exporters)]);
    const wallMs = Math.round(performance.now() - started);

    added.forEach((run, i) => {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toBe(`Added credentials to profile "${profile(i)}" in vault (file backend)\n`);
    });
    for (const run of listed) {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toBe('');
      for (let i = 0; i < READERS; i++) expect(run.stdout).toMatch(new RegExp(`^r${i}\\s+r${i}\\s`, 'm'));
    }
    for (const run of exported) {
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ Version: 1, AccessKeyId: expect.stringMatching(/^ASIA/) });
    }

    // Every key reads back exactly, from the files (in this process) and through the CLI.
    await expectAllReadable([...Array.from({ length: WRITERS }, (_, i) => profile(i)), ...Array.from({ length: READERS }, (_, i) => `r${i}`)]);
    const credentials = await vault(['list', '--credentials']);
    expect(credentials.code).toBe(0);
    expect(credentials.stdout.split('\n').filter(Boolean).sort()).toEqual(expect.arrayContaining([...Array.from({ length: WRITERS }, (_, i) => profile(i))]));
    // No temporary file left behind; files 0600 in a 0700 directory.
    expect(readdirSync(keyDir()).filter((n) => n.startsWith('.'))).toEqual([]);
    expectPrivate(keyDir());
    figures.push(
      `FIGURE keyringFaults concurrent adds=${WRITERS} lists=${listed.length} exports=${exported.length} processes=${WRITERS + listed.length + exported.length} ` +
        `wall=${wallMs}ms lost=0 corrupted=0 itemsAfter=${readdirSync(keyDir()).length}`,
    );
  }, 120_000);

  it('a truncated item: one line naming it; every other item stays readable; remove + add repairs it', async () => {
    const file = join(keyDir(), 'p01');
    const token = readFileSync(file, 'utf8');
    writeFileSync(file, token.slice(0, Math.floor(token.length / 2)));
    damaged.add('p01');
    expectOneLineError(await vault(['export', '--format', 'json', 'p01']), /^vault: the file keyring item p01 \(.*p01\) is damaged and cannot be decrypted; other items are unaffected; remove it/);
    const other = await vault(['export', '--format', 'json', 'p02']);
    expect(other.code, other.stderr).toBe(0);
    expect((await vault(['list'])).code).toBe(0);
    await expectAllReadable(['p00', 'p02', 'p49']);
    expect((await vault(['remove', '-f', 'p01'])).code).toBe(0);
    expect((await add('p01', keys.get('p01')!)).code).toBe(0);
    damaged.delete('p01');
    await expectAllReadable(['p01']);
  });

  it('a tampered item (one ciphertext character changed, or a p2c planted to stall reads): one line each, the rest readable', async () => {
    const file = join(keyDir(), 'p03');
    const parts = readFileSync(file, 'utf8').trim().split('.');
    const ciphertext = parts[3]!;
    const at = Math.floor(ciphertext.length / 2);
    parts[3] = ciphertext.slice(0, at) + (ciphertext[at] === 'A' ? 'B' : 'A') + ciphertext.slice(at + 1);
    writeFileSync(file, parts.join('.'));
    damaged.add('p03');
    expectOneLineError(await vault(['export', '--format', 'json', 'p03']), /^vault: the file keyring item p03 .* is damaged and cannot be decrypted/);

    const planted = join(keyDir(), 'p04');
    const p4 = readFileSync(planted, 'utf8').trim().split('.');
    const header = JSON.parse(Buffer.from(p4[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    p4[0] = Buffer.from(JSON.stringify({ ...header, p2c: 2 ** 31 })).toString('base64url');
    writeFileSync(planted, p4.join('.'));
    damaged.add('p04');
    const stalled = await vault(['export', '--format', 'json', 'p04']);
    expectOneLineError(stalled, /^vault: the file keyring item p04 .* is damaged and cannot be decrypted/);
    // No stopwatch: deriving with p2c = 2^31 takes many minutes, so a CLI that computed it would be
    // killed by runVault's 60 s timeout and fail expectOneLineError (signal, no line) above.
    figures.push(`FIGURE keyringFaults tampered=p03 plantedP2c=2^31 refusedIn=${stalled.ms}ms`);

    await expectAllReadable(['p02', 'p05', 'p48']);
    expect((await vault(['export', '--format', 'json', 'p05'])).code).toBe(0);
  });

  it('a wrong passphrase: one line on read, a refused write that stores nothing; the right one still opens everything', async () => {
    const wrong = { AWS_VAULT_FILE_PASSPHRASE: WRONG_PASSPHRASE };
    expectOneLineError(await vault(['export', '--format', 'json', 'p06'], wrong), /^vault: file keyring passphrase is wrong for .*p06; use the passphrase the item was stored with/);
    expectOneLineError(await add('late', keys.get('late')!, wrong), /^vault: file keyring passphrase is wrong for .*; nothing was written/);
    expect(readdirSync(keyDir())).not.toContain('late');
    await expectAllReadable(['p06', 'p07', 'r0']);
    expect((await vault(['export', '--format', 'json', 'p06'])).code).toBe(0);
  });

  it('a full disk (a 64 KiB tmpfs, filled): `vault add` fails in one line, leaves no temporary file, earlier items stay readable', async () => {
    const mount = smallTmpfs(64, 'full disk');
    const dir = join(mount, 'keys');
    const env = { AWS_VAULT_FILE_DIR: dir };
    for (const name of ['f0', 'f1', 'f2']) expect((await add(name, keys.get(name)!, env)).code).toBe(0);
    expect((await add('central-account', world.user, env)).code).toBe(0);
    // Fill what is left.
    const fd = openSync(join(mount, 'filler'), 'w');
    let filled = 0;
    try {
      for (const size of [16_384, 4_096, 512, 1]) {
        for (;;) {
          try {
            filled += writeSync(fd, Buffer.alloc(size, 1));
          } catch {
            break;
          }
        }
      }
    } finally {
      closeSync(fd);
    }
    const failed = await add('f3', keys.get('f3')!, env);
    const line = expectOneLineError(failed, /^vault: could not write the file keyring item f3 \(.*f3\): ENOSPC \(no space left on device\); the previous value, if any, is unchanged; check free space/);
    expect(readdirSync(dir).sort()).toEqual(['central-account', 'f0', 'f1', 'f2']);
    await expectAllReadable(['f0', 'f1', 'f2'], dir);
    const listed = await vault(['list', '--credentials'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n').filter(Boolean)).toEqual(['central-account', 'f0', 'f1', 'f2']);
    // A command that uses a stored key still works: the MFA session it cannot cache is used uncached.
    await expectCredentialsWithoutCache(env);
    expectPrivate(dir);
    figures.push(`FIGURE keyringFaults fullDisk=ran tmpfs=64KiB filled=${filled}B error=${JSON.stringify(line)}`);
  });

  it('a read-only directory (a tmpfs remounted ro): `vault add` fails in one line, the items stay readable', async () => {
    const mount = smallTmpfs(256, 'read-only directory');
    const dir = join(mount, 'keys');
    const env = { AWS_VAULT_FILE_DIR: dir };
    for (const name of ['ro0', 'ro1']) expect((await add(name, keys.get(name)!, env)).code).toBe(0);
    expect((await add('central-account', world.user, env)).code).toBe(0);
    try {
      execFileSync('mount', ['-o', 'remount,ro', mount], { stdio: 'pipe' });
    } catch (error) {
      throw new Error(`the read-only directory test needs root to remount its tmpfs read-only (CI runs as root): ${String(error).split('\n')[0]}`);
    }
    const line = expectOneLineError(await add('ro2', keys.get('ro2')!, env), /^vault: could not write the file keyring item ro2 \(.*ro2\): EROFS \(read-only file system\)/);
    await expectAllReadable(['ro0', 'ro1'], dir);
    const listed = await vault(['list', '--credentials'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n').filter(Boolean)).toEqual(['central-account', 'ro0', 'ro1']);
    await expectCredentialsWithoutCache(env);
    figures.push(`FIGURE keyringFaults readOnlyDir=ran (tmpfs remounted ro) error=${JSON.stringify(line)}`);
  });

  it('after every fault above: the items they touched or sat next to read back exactly, and all are listed', async () => {
    // (Every item was decrypted and compared right after the concurrent writes; since then only
    // p01, p03 and p04 were written, and the sessions of the exports.)
    const sample = ['p00', 'p01', 'p02', 'p05', 'p06', 'p07', 'p25', 'p49', 'r0', 'r1', 'r2'].filter((name) => !damaged.has(name));
    await expectAllReadable(sample);
    const listed = await vault(['list', '--credentials']);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n').filter(Boolean)).toEqual(expect.arrayContaining([...allWriters(), 'r0', 'r1', 'r2']));
    expect(readdirSync(keyDir()).filter((n) => n.startsWith('.'))).toEqual([]);
    figures.push(`FIGURE keyringFaults afterFaults readBack=${sample.length} listed=${WRITERS + READERS} damagedOnPurpose=${[...damaged].join(',')} lost=0`);
  });

  it('permissions: a directory created by vault is 0700 with 0600 files; a looser existing one is tightened', async () => {
    expectPrivate(keyDir());
    const loose = join(world.home, 'loose-keys');
    mkdirSync(loose, { mode: 0o755 });
    chmodSync(loose, 0o755);
    expect((await add('late', keys.get('late')!, { AWS_VAULT_FILE_DIR: loose })).code).toBe(0);
    expectPrivate(loose);
    await expectAllReadable(['late'], loose);
  });
});
