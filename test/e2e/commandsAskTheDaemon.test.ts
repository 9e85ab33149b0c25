import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, World } from '../support/world.js';

/** The lines of the daemon's audit trail for commands that asked it (`POST /credentials`). */
function resolvedLines(world: World): Array<{ profile: string }> {
  const log = readFileSync(join(world.home, '.vault', 'daemon', 'daemon.log'), 'utf8');
  world.capture('daemon.log', log);
  return log
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((l) => l.route === 'control-resolve' || l.route === 'control-export');
}

const printKeyId = ['--', 'sh', '-c', 'printf %s "$AWS_ACCESS_KEY_ID"'];

describe.each(BACKENDS)('exec and export ask a running daemon instead of opening the keyring (%s backend)', (backend) => {
  let world: World;

  beforeAll(async () => {
    world = await World.create(backend);
    await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
    expect((await world.vault(['exec', '-t', '123456', 'account-a', '--', 'true'])).code).toBe(0);
    expect((await world.vault(['server', 'start'])).code).toBe(0);
  });

  afterAll(async () => {
    if (world) {
      await world.captureDaemonEnviron();
      process.stdout.write(`FIGURE envScan processes=1 suite=commandsAskTheDaemon backend=${backend}\n`);
      await world.vault(['server', 'stop']);
      expect(world.leaks()).toEqual([]);
      await world.close();
    }
  });

  it('exec with cached credentials: the daemon answers from its keyring, no STS call, the same credentials as before', async () => {
    const before = world.mintingCalls();
    const noDaemonHere = join(world.home, 'no-daemon-here');
    mkdirSync(noDaemonHere, { recursive: true, mode: 0o700 }); // a VAULT_STATE_DIR that is missing is refused
    const local = await world.vault(['exec', 'account-a', ...printKeyId], { VAULT_STATE_DIR: noDaemonHere });
    const viaDaemon = await world.vault(['exec', 'account-a', ...printKeyId]);
    expect(viaDaemon.code).toBe(0);
    expect(viaDaemon.stdout).toMatch(/^ASIA/);
    expect(viaDaemon.stdout).toBe(local.stdout); // both read the role session cached in the keyring
    expect(world.mintingCalls()).toBe(before);
    expect(resolvedLines(world).filter((l) => l.profile === 'account-a')).toHaveLength(1);
  });

  it('a role the daemon has not seen: it assumes it over the cached MFA session, with no prompt', async () => {
    const before = world.sts.count('AssumeRole');
    const result = await world.vault(['exec', 'account-b', ...printKeyId]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(world.sts.count('AssumeRole')).toBe(before + 1);
    expect(world.sts.count('GetSessionToken')).toBe(1);
    expect(resolvedLines(world).some((l) => l.profile === 'account-b')).toBe(true);
  });

  it('export --format json (credential_process) is answered by the daemon', async () => {
    const count = resolvedLines(world).length;
    const result = await world.vault(['export', '--format', 'json', 'account-a']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ Version: 1 });
    expect(resolvedLines(world)).toHaveLength(count + 1);
  });

  it('a command with another configuration (AWS_MIN_TTL here) resolves locally and still works', async () => {
    const count = resolvedLines(world).length;
    const result = await world.vault(['exec', 'account-a', ...printKeyId], { AWS_MIN_TTL: '20m' });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ASIA/);
    expect(resolvedLines(world)).toHaveLength(count);
  });

  it('errors that are final come back as one line, and are not retried locally', async () => {
    const before = world.mintingCalls();
    const result = await world.vault(['exec', 'no-such-profile', '--', 'true']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^vault: .*no-such-profile/);
    expect(world.mintingCalls()).toBe(before);
  });
});
