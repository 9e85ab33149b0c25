import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStsStandIn, type StsStandIn } from '@vault/stand-ins';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLeaks } from '../support/leaks.js';
import { FILE_PASSPHRASE, World } from '../support/world.js';

let world: World;

interface Line {
  status: string;
  check: string;
  text: string;
}

/** `vault doctor` text output as (status, check, rest) triples, the rest with its remedy. */
function lines(stdout: string): Line[] {
  return stdout
    .trimEnd()
    .split('\n')
    .map((line) => {
      const [, status = '', check = '', text = ''] = /^(\S+)\s+(\S+)\s+(.*)$/.exec(line) ?? [];
      return { status, check, text };
    });
}

function only(all: Line[], check: string): Line {
  const found = all.filter((l) => l.check === check);
  expect(found, check).toHaveLength(1);
  return found[0]!;
}

async function doctor(args: string[] = [], extra: NodeJS.ProcessEnv = {}) {
  return world.vault(['doctor', ...args], extra);
}

describe('vault doctor', () => {
  beforeAll(async () => {
    world = await World.create('file');
    await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
    const warm = await world.vault(['exec', 'account-a', '-t', '123456', '--', 'true']);
    expect(warm.code, warm.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await world?.vault(['server', 'stop']);
    await world?.close();
  });

  it('on a working machine: one line per check, none failing, exit 0', async () => {
    const result = await doctor();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const all = lines(result.stdout);
    expect(all.map((l) => l.check)).toEqual(['node', 'keytar', 'config', 'profiles', 'keyring', 'daemon', 'sts', 'clock']);
    expect(only(all, 'node').text).toContain(`Node ${process.version}`);
    expect(only(all, 'keytar')).toMatchObject({ status: 'ok' });
    expect(only(all, 'config')).toEqual({ status: 'ok', check: 'config', text: `${join(world.home, '.aws/config')}: 4 profile(s): central-account, account-a, account-b, via-process` });
    expect(only(all, 'profiles')).toMatchObject({ status: 'ok', text: 'all 4 resolve' });
    expect(only(all, 'keyring')).toMatchObject({ status: 'ok' });
    expect(only(all, 'keyring').text).toMatch(/^file backend \(.*\.awsvault\/keys\) opens; \d+ item\(s\)$/);
    expect(only(all, 'daemon').text).toMatch(/^not running/);
    expect(only(all, 'sts')).toMatchObject({ status: 'ok' });
    expect(only(all, 'sts').text).toMatch(new RegExp(`^${world.sts.url} answers \\(HTTP \\d+, \\d+ ms\\) \\(central-account, account-a, account-b, via-process\\)$`));
    expect(only(all, 'clock')).toMatchObject({ status: 'ok' });
    // An unsigned probe: no STS call made with anyone's credentials.
    expect(world.sts.count('GetCallerIdentity')).toBe(0);
  }, 60_000);

  it('--profile adds GetCallerIdentity with that profile\'s (cached) credentials', async () => {
    const before = world.mintingCalls();
    const result = await doctor(['--profile', 'account-a']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const identity = only(lines(result.stdout), 'identity');
    expect(identity.status).toBe('ok');
    expect(identity.text).toMatch(/^account-a is arn:aws:sts::222222222222:assumed-role\/account-a-assume-role\/.+ \(account 222222222222\)$/);
    expect(world.mintingCalls()).toBe(before);
  }, 60_000);

  it('--format json: the same checks as data, for a bug report', async () => {
    const result = await doctor(['--format', 'json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { ok: boolean; node: string; checks: Array<{ check: string; status: string; detail: string }> };
    expect(report.ok).toBe(true);
    expect(report.node).toBe(process.version);
    expect(report.checks.map((c) => c.check)).toEqual(['node', 'keytar', 'config', 'profiles', 'keyring', 'daemon', 'sts', 'clock']);
  }, 60_000);

  it('no config file: a warn line saying where it looked and what to do', async () => {
    const result = await doctor([], { AWS_CONFIG_FILE: join(world.home, 'nowhere', 'config') });
    expect(result.code).toBe(0);
    expect(only(lines(result.stdout), 'config')).toEqual({
      status: 'warn',
      check: 'config',
      text: `no config file at ${join(world.home, 'nowhere', 'config')}; add [profile NAME] sections (see the README), or point AWS_CONFIG_FILE at your config file`,
    });
  }, 60_000);

  it('a config file that does not parse: fail with the line number, exit 1', async () => {
    const bad = join(world.home, 'bad-config');
    writeFileSync(bad, '[profile ok]\nregion = eu-west-1\n[profile broken\nregion = eu-west-1\n');
    const result = await doctor([], { AWS_CONFIG_FILE: bad });
    expect(result.code).toBe(1);
    expect(only(lines(result.stdout), 'config')).toEqual({ status: 'fail', check: 'config', text: `${bad} line 3: section header has no closing ']'; fix the section header, e.g. [profile NAME]` });
  }, 60_000);

  it('a profile that does not resolve: fail naming the first one', async () => {
    const bad = join(world.home, 'loop-config');
    writeFileSync(bad, '[profile a]\nsource_profile = b\nrole_arn = arn:aws:iam::222222222222:role/r\n[profile b]\nsource_profile = a\nrole_arn = arn:aws:iam::222222222222:role/r\n');
    const result = await doctor([], { AWS_CONFIG_FILE: bad });
    expect(result.code).toBe(1);
    const profiles = only(lines(result.stdout), 'profiles');
    expect(profiles.status).toBe('fail');
    expect(profiles.text).toMatch(/^profile a: source_profile loop in .* a → b → a; /);
  }, 60_000);

  it('a keychain with no Secret Service: fail with the remedy', async () => {
    const result = await doctor([], { AWS_VAULT_BACKEND: 'keychain', DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(world.home, 'no-bus')}` });
    expect(result.code).toBe(1);
    const keyring = only(lines(result.stdout), 'keyring');
    expect(keyring.status).toBe('fail');
    expect(keyring.text).toMatch(/^keychain backend: .+; .*--backend file/);
  }, 60_000);

  it('an STS endpoint that does not answer: fail, and the clock offset is unknown', async () => {
    const result = await doctor([], { AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:1' });
    expect(result.code).toBe(1);
    const all = lines(result.stdout);
    expect(only(all, 'sts').status).toBe('fail');
    expect(only(all, 'sts').text).toMatch(/^http:\/\/127\.0\.0\.1:1 does not answer: ECONNREFUSED .*; check the network/);
    expect(only(all, 'clock').status).toBe('warn');
  }, 60_000);

  describe('the clock against an STS whose Date is 10 minutes ahead', () => {
    let skewed: StsStandIn;
    beforeAll(async () => {
      skewed = await startStsStandIn({ clock: { now: () => Date.now() + 600_000 } });
    });
    afterAll(async () => skewed?.close());

    it('fails past SigV4\'s 5 minutes, saying by how much', async () => {
      const result = await doctor([], { AWS_ENDPOINT_URL_STS: skewed.url });
      expect(result.code).toBe(1);
      const clock = only(lines(result.stdout), 'clock');
      expect(clock.status).toBe('fail');
      expect(clock.text).toMatch(/^(599|600|601) s behind STS \(its Date header\); synchronise the clock/);
    }, 60_000);
  });

  it('a daemon that runs and answers: ok with its pid; one that hangs: fail; one that died: warn', async () => {
    expect((await world.vault(['server', 'start'])).code).toBe(0);
    const pid = await world.captureDaemonEnviron();
    const running = only(lines((await doctor()).stdout), 'daemon');
    expect(running.status).toBe('ok');
    expect(running.text).toMatch(new RegExp(`^runs \\(pid ${pid}\\) and answers on `));

    process.kill(pid, 'SIGSTOP');
    try {
      const hung = await doctor();
      expect(hung.code).toBe(1);
      expect(only(lines(hung.stdout), 'daemon')).toMatchObject({ status: 'fail' });
      expect(only(lines(hung.stdout), 'daemon').text).toMatch(new RegExp(`^pid ${pid} runs but does not answer .*; see its log at .*vault server stop`));
    } finally {
      process.kill(pid, 'SIGKILL');
      process.kill(pid, 'SIGCONT');
    }
    for (let i = 0; i < 250; i += 1) {
      try {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 20));
      } catch {
        break;
      }
    }
    const dead = await doctor();
    expect(dead.code).toBe(0);
    expect(only(lines(dead.stdout), 'daemon')).toMatchObject({ status: 'warn' });
    expect(only(lines(dead.stdout), 'daemon').text).toMatch(new RegExp(`^ended without stopping \\(pid ${pid} is gone\\); the next command`));
  }, 90_000);

  it('prints no secret in any output, file under HOME or argument', () => {
    expect(world.leaks()).toEqual([]);
    expect(findLeaks([FILE_PASSPHRASE, world.user.secretAccessKey], world.captured)).toEqual([]);
  });
});
