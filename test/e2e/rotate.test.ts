import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIamStandIn, type IamStandIn } from '@vault/stand-ins';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findLeaks } from '../support/leaks.js';
import { World } from '../support/world.js';

const CENTRAL_USER = 'arn:aws:iam::111111111111:user/central-user';
const ROTATE_USER = 'arn:aws:iam::111111111111:user/rotate-user';

/** One `vault:` line on stderr after the progress lines, and a non-zero exit. */
function errorLine(result: { code: number | null; stderr: string }): string {
  expect(result.code).toBe(1);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines.filter((l) => l.startsWith('vault: '))).toHaveLength(1);
  return lines.at(-1)!;
}

describe('vault rotate: a new key replaces the stored one, and a failure at any step leaves one working key stored', { timeout: 120_000 }, () => {
  let world: World;
  let iam: IamStandIn;
  let rotateKey = { accessKeyId: '', secretAccessKey: '' };
  const mounts: string[] = [];

  const env = (extra: NodeJS.ProcessEnv = {}) => ({ AWS_ENDPOINT_URL_IAM: iam.url, ...extra });

  /** Which key is stored for rotate-me, and does it work: a GetSessionToken signed with it must succeed. */
  async function storedRotateKey(extra: NodeJS.ProcessEnv = {}): Promise<string> {
    await world.vault(['clear', 'rotate-me'], extra);
    world.sts.resetCalls();
    const result = await world.vault(['exec', 'rotate-me', '--', 'true'], extra);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const [call] = world.sts.calls.filter((c) => c.action === 'GetSessionToken');
    expect(call!.ok).toBe(true);
    return call!.accessKeyId;
  }

  beforeAll(async () => {
    world = await World.create('file');
    iam = await startIamStandIn(world.sts);
    rotateKey = world.sts.addUser({ arn: ROTATE_USER });
    appendFileSync(join(world.home, '.aws', 'config'), '\n[profile rotate-me]\nregion = eu-west-1\n\n[profile no-key]\nregion = eu-west-1\n');
    expect((await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey })).code).toBe(0);
    expect((await world.vault(['add', '--env', 'rotate-me'], { AWS_ACCESS_KEY_ID: rotateKey.accessKeyId, AWS_SECRET_ACCESS_KEY: rotateKey.secretAccessKey })).code).toBe(0);
  }, 60_000);

  beforeEach(() => {
    iam.clearFaults();
    iam.setPolicy({});
    iam.resetCalls();
  });

  afterAll(async () => {
    for (const mount of mounts) {
      try {
        execFileSync('umount', [mount], { stdio: 'pipe' });
      } catch {
        // already gone
      }
      rmSync(mount, { recursive: true, force: true });
    }
    if (!world) return;
    expect(world.leaks()).toEqual([]);
    expect(findLeaks([rotateKey.secretAccessKey, ...iam.createdSecrets()], world.captured, [world.home])).toEqual([]);
    await iam.close();
    await world.close();
  });

  it('an MFA-protected user: rotates through the cached MFA session, stores the new key, drops the credentials cached from the old one, deletes the old key', async () => {
    iam.setPolicy({ requireMfa: true });
    const oldKey = world.user.accessKeyId;
    // A cached MFA session and role credentials, both from the old key.
    expect((await world.vault(['exec', '-t', '123456', 'account-a', '--', 'true'])).code).toBe(0);
    world.sts.resetCalls();
    const result = await world.vault(['rotate', 'central-account'], env());
    expect(result.stderr).toMatch(/^Rotating the key stored for profile central-account \(IAM user central-user, key \*{4}\w{4}\)\nCreated new access key \*{4}\w{4}\nDeleted old access key \*{4}\w{4}\nRotated the key stored for profile central-account\n$/);
    expect(result.code).toBe(0);

    const keys = world.sts.userKeyIds(CENTRAL_USER);
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toBe(oldKey);
    expect(world.sts.describeKey(oldKey)).toBeUndefined();
    // Every IAM call was signed by an MFA session (the cached one: no code asked, no GetSessionToken).
    expect(iam.calls.map((c) => [c.action, c.mfa, c.userName])).toEqual([
      ['GetUser', true, undefined],
      ['CreateAccessKey', true, 'central-user'],
      ['DeleteAccessKey', true, 'central-user'],
    ]);
    expect(iam.calls.find((c) => c.action === 'DeleteAccessKey')!.targetKeyId).toBe(oldKey);
    expect(world.sts.count('GetSessionToken')).toBe(0);
    // STS was asked to accept the new key before the old one was deleted.
    expect(world.sts.calls.filter((c) => c.action === 'GetCallerIdentity').map((c) => c.accessKeyId)).toEqual([keys[0]]);
    // The credentials cached from the old key are gone.
    expect((await world.vault(['list', '--sessions'])).stdout.trim()).toBe('');
    // The next command uses the new key (and needs a code again).
    world.sts.resetCalls();
    const next = await world.vault(['exec', '-t', '123456', 'account-a', '--', 'true']);
    expect(next.code).toBe(0);
    expect(world.sts.calls.find((c) => c.action === 'GetSessionToken')!.accessKeyId).toBe(keys[0]);
  });

  it('without a cached MFA session it makes one with the code; -n signs the IAM calls with the key itself', async () => {
    iam.setPolicy({ requireMfa: true });
    await world.vault(['clear']);
    world.sts.resetCalls();
    const withCode = await world.vault(['rotate', '-t', '123456', 'central-account'], env());
    expect(withCode.code).toBe(0);
    expect(world.sts.calls.filter((c) => c.action === 'GetSessionToken').map((c) => [c.serialNumber, c.tokenCodeSent, c.durationSeconds])).toEqual([
      ['arn:aws:iam::111111111111:mfa/central-user', true, 900],
    ]);

    iam.setPolicy({});
    iam.resetCalls();
    const before = world.sts.userKeyIds(CENTRAL_USER)[0]!;
    const direct = await world.vault(['rotate', '-n', 'central-account'], env());
    expect(direct.code).toBe(0);
    expect(iam.calls.map((c) => [c.action, c.accessKeyId, c.mfa])).toEqual([
      ['GetUser', before, false],
      ['CreateAccessKey', before, false],
      ['DeleteAccessKey', before, false],
    ]);
    expect(world.sts.userKeyIds(CENTRAL_USER)).toHaveLength(1);
  });

  it('storing the new key fails (a read-only keyring directory): the new key is deleted at AWS again, the old one stays stored and works', async () => {
    const mount = mkdtempSync(join(tmpdir(), 'vault-rotate-ro-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mount], { stdio: 'pipe' });
    mounts.push(mount);
    const dirEnv = { AWS_VAULT_FILE_DIR: join(mount, 'keys') };
    // rotate-me's first key, stored in a keyring on the tmpfs (this test runs before any rotation of it).
    const current = rotateKey.accessKeyId;
    expect((await world.vault(['add', '--env', 'rotate-me'], { ...dirEnv, AWS_ACCESS_KEY_ID: current, AWS_SECRET_ACCESS_KEY: rotateKey.secretAccessKey })).code).toBe(0);
    execFileSync('mount', ['-o', 'remount,ro', mount], { stdio: 'pipe' });
    const line = errorLine(await world.vault(['rotate', 'rotate-me'], env(dirEnv)));
    expect(line).toMatch(
      /^vault: could not store the new key for profile rotate-me \(could not write the file keyring item rotate-me .*EROFS.*\); deleted it at AWS again, the stored key is unchanged and still works; fix the keyring and run `vault rotate rotate-me` again$/,
    );
    expect(iam.calls.map((c) => [c.action, c.ok])).toEqual([
      ['GetUser', true],
      ['CreateAccessKey', true],
      ['DeleteAccessKey', true],
    ]);
    expect(iam.calls.at(-1)!.targetKeyId).not.toBe(current);
    expect(world.sts.userKeyIds(ROTATE_USER)).toEqual([current]);
    world.sts.resetCalls();
    const works = await world.vault(['exec', 'rotate-me', '--', 'true'], dirEnv);
    expect(works.code).toBe(0);
    expect(world.sts.calls.find((c) => c.action === 'GetSessionToken')!.accessKeyId).toBe(current);
  });

  it('takes the profile from AWS_PROFILE; the user name comes from GetUser\'s AccessDenied message when GetUser is not allowed', async () => {
    iam.setPolicy({ denyGetUser: true });
    const oldKey = await storedRotateKey();
    const result = await world.vault(['rotate'], env({ AWS_PROFILE: 'rotate-me' }));
    expect(result.code).toBe(0);
    expect(iam.calls.map((c) => [c.action, c.ok, c.userName])).toEqual([
      ['GetUser', false, undefined],
      ['CreateAccessKey', true, 'rotate-user'],
      ['DeleteAccessKey', true, 'rotate-user'],
    ]);
    const newKey = await storedRotateKey();
    expect(newKey).not.toBe(oldKey);
    expect(world.sts.userKeyIds(ROTATE_USER)).toEqual([newKey]);
  });

  it('a profile with no stored key to rotate: one line with the remedy, no IAM call', async () => {
    const result = await world.vault(['rotate', 'no-key'], env());
    expect(result.stderr).toBe('vault: profile no-key has no stored key to rotate; store one with `vault add no-key` first\n');
    expect(result.code).toBe(1);
    expect(iam.calls).toEqual([]);
  });

  it('GetUser fails: nothing changed, the old key is stored and works', async () => {
    const oldKey = await storedRotateKey();
    iam.injectFault({ action: 'GetUser', status: 500, code: 'ServiceFailure', message: 'Service failure' });
    const line = errorLine(await world.vault(['rotate', 'rotate-me'], env()));
    expect(line).toBe('vault: could not find the IAM user of the key stored for profile rotate-me (ServiceFailure: Service failure); nothing was changed; try again shortly: run `vault rotate rotate-me` again');
    expect(await storedRotateKey()).toBe(oldKey);
    expect(world.sts.userKeyIds(ROTATE_USER)).toEqual([oldKey]);
  });

  it('CreateAccessKey fails (the user already has two keys): nothing changed, and the line says how to make room', async () => {
    const oldKey = await storedRotateKey();
    const spare = world.sts.addUser({ arn: ROTATE_USER });
    try {
      const line = errorLine(await world.vault(['rotate', 'rotate-me'], env()));
      expect(line).toBe(
        'vault: CreateAccessKey for IAM user rotate-user failed (LimitExceeded: Cannot exceed quota for AccessKeysPerUser: 2); nothing was changed, the stored key still works; ' +
          'user rotate-user already has two access keys: delete the one not stored here (`aws iam list-access-keys --user-name rotate-user`, then `aws iam delete-access-key --user-name rotate-user --access-key-id ID`) and run `vault rotate rotate-me` again',
      );
    } finally {
      world.sts.removeKey(spare.accessKeyId);
    }
    expect(await storedRotateKey()).toBe(oldKey);
    expect(world.sts.userKeyIds(ROTATE_USER)).toEqual([oldKey]);
  });

  it('waits until STS accepts the new key (IAM is eventually consistent), then deletes the old one', async () => {
    const oldKey = await storedRotateKey();
    iam.setPolicy({ propagationRequests: 2 });
    world.sts.resetCalls();
    const result = await world.vault(['rotate', 'rotate-me'], env());
    expect(result.stderr).not.toMatch(/^vault:/m);
    expect(result.code).toBe(0);
    const [newKey] = world.sts.userKeyIds(ROTATE_USER);
    expect(newKey).not.toBe(oldKey);
    // Two refusals, then the check that passed; only after it the old key was deleted.
    expect(world.sts.calls.filter((c) => c.action === 'GetCallerIdentity').map((c) => [c.accessKeyId, c.ok])).toEqual([
      [newKey, false],
      [newKey, false],
      [newKey, true],
    ]);
    expect(iam.calls.at(-1)).toMatchObject({ action: 'DeleteAccessKey', targetKeyId: oldKey, ok: true });
    expect(await storedRotateKey()).toBe(newKey);
  });

  it('DeleteAccessKey is retried past a transient failure', async () => {
    iam.injectFault({ action: 'DeleteAccessKey', status: 500, code: 'ServiceFailure', message: 'Service failure', times: 1 });
    const result = await world.vault(['rotate', 'rotate-me'], env());
    expect(result.code).toBe(0);
    expect(iam.calls.filter((c) => c.action === 'DeleteAccessKey').map((c) => c.ok)).toEqual([false, true]);
    expect(world.sts.userKeyIds(ROTATE_USER)).toHaveLength(1);
  }, 60_000);

  it('DeleteAccessKey refused: the new key is stored and works, and the line gives the command that deletes the old one', async () => {
    const oldKey = await storedRotateKey();
    iam.injectFault({ action: 'DeleteAccessKey', status: 403, code: 'AccessDenied', message: `User: ${ROTATE_USER} is not authorized to perform: iam:DeleteAccessKey on resource: user rotate-user` });
    const line = errorLine(await world.vault(['rotate', 'rotate-me'], env()));
    const newKey = world.sts.userKeyIds(ROTATE_USER).find((k) => k !== oldKey)!;
    expect(line).toBe(
      `vault: the new key ****${newKey.slice(-4)} is stored for profile rotate-me and works, but deleting the old key ${oldKey} failed ` +
        `(AccessDenied: User: ${ROTATE_USER} is not authorized to perform: iam:DeleteAccessKey on resource: user rotate-user); ` +
        `delete it with \`aws iam delete-access-key --user-name rotate-user --access-key-id ${oldKey}\``,
    );
    expect(await storedRotateKey()).toBe(newKey);
    world.sts.removeKey(oldKey); // what the user would run
  });

  it('a cached `vault exec` never loads @aws-sdk/client-iam (nor the browser opener)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vault-trace-'));
    try {
      writeFileSync(join(dir, 'hooks.mjs'), "import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(process.env.VAULT_TEST_TRACE, r.url + '\\n'); return r; }\n");
      writeFileSync(join(dir, 'trace.mjs'), "import { register } from 'node:module';\nregister(new URL('./hooks.mjs', import.meta.url));\n");
      const trace = join(dir, 'loaded.txt');
      writeFileSync(trace, '');
      expect((await world.vault(['exec', 'rotate-me', '--', 'true'])).code).toBe(0);
      const result = await world.vault(['exec', 'rotate-me', '--', 'true'], { NODE_OPTIONS: `--import=${join(dir, 'trace.mjs')}`, VAULT_TEST_TRACE: trace });
      expect(result.code).toBe(0);
      const loaded = readFileSync(trace, 'utf8');
      expect(loaded).toContain('/bundle/exec-');
      expect(loaded).not.toContain('client-iam');
      expect(loaded).not.toContain('/open/');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
