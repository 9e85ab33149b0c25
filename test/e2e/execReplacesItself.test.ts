import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VAULT_BIN } from '../support/cli.js';
import { environOf } from '../support/leaks.js';
import { FILE_PASSPHRASE, World } from '../support/world.js';

/**
 * `vault exec` without a server becomes the command on a Node with process.execve (22.15+, 24) and
 * runs it as a child on older Node. The suite runs on both (scripts/test.sh), so each run checks
 * the path its Node takes: the expected values below follow from the Node under test, not from
 * anything vault reports.
 */
const REPLACES = typeof (process as { execve?: unknown }).execve === 'function';
const PATH_TAKEN = REPLACES ? 'replaces itself with the command' : 'runs the command as its child';

// The command's environment holds the session credentials by design (that is the delivery), so it
// is checked for the long-term key and passphrase only, not captured for the leak scan.
// The command: records its pid, parent and environment, says it is ready, then waits to be signalled.
const PROBE = `
const { writeFileSync } = require('node:fs');
const [file] = process.argv.slice(1);
writeFileSync(file, JSON.stringify({ pid: process.pid, ppid: process.ppid }));
writeFileSync(file + '.ready', '');
if (process.env.PROBE_EXIT) process.exit(Number(process.env.PROBE_EXIT));
setInterval(() => {}, 1000);
`;

let world: World;
let runs = 0;

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1500 && !check(); i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

interface Probed {
  vaultPid: number;
  probe: { pid: number; ppid: number };
  environ: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** `vault exec account-a -- node -e PROBE FILE`; `whileRunning` gets vault's pid once the probe is ready. */
async function probe(extra: NodeJS.ProcessEnv, whileRunning: (vaultPid: number) => void): Promise<Probed> {
  runs += 1;
  const file = join(world.home, `probe-${runs}.json`);
  const vault = spawn(process.execPath, [VAULT_BIN, 'exec', 'account-a', '--', process.execPath, '-e', PROBE, file], {
    env: world.env(extra),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  vault.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => vault.on('exit', (code, signal) => resolve([code, signal])));
  await until(() => existsSync(`${file}.ready`) || vault.exitCode !== null, 'the command to be ready');
  const probed = JSON.parse(readFileSync(file, 'utf8')) as Probed['probe'];
  const environ = environOf(probed.pid);
  whileRunning(vault.pid!);
  const [code, signal] = await exited;
  world.capture(`probe ${runs} stderr`, stderr);
  return { vaultPid: vault.pid!, probe: probed, environ, code, signal };
}

describe(`vault exec without a server on Node ${process.version} ${PATH_TAKEN}`, () => {
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

  it(`the pid that ran vault ${REPLACES ? 'is now the command' : "is the command's parent"}`, async () => {
    const run = await probe({ PROBE_EXIT: '0' }, () => {});
    expect(run.code).toBe(0);
    expect(run.probe.pid === run.vaultPid).toBe(REPLACES);
    expect(run.probe.ppid === run.vaultPid).toBe(!REPLACES);
  }, 60_000);

  it("the command's exit status is what vault's caller sees", async () => {
    const run = await probe({ PROBE_EXIT: '7' }, () => {});
    expect([run.code, run.signal]).toEqual([7, null]);
  }, 60_000);

  it('SIGTERM sent to the pid that ran vault ends the command, and the caller sees it died of SIGTERM', async () => {
    const run = await probe({}, (pid) => process.kill(pid, 'SIGTERM'));
    expect([run.code, run.signal]).toEqual([null, 'SIGTERM']);
  }, 60_000);

  it("the command's environment holds neither the long-term key nor the file passphrase", async () => {
    // The waiting probe, so its /proc/PID/environ is read while it runs.
    const run = await probe({}, (pid) => process.kill(pid, 'SIGTERM'));
    expect(run.environ).toContain('AWS_SESSION_TOKEN=');
    expect(run.environ).not.toContain(world.user.secretAccessKey);
    expect(run.environ).not.toContain(FILE_PASSPHRASE);
  }, 60_000);

  it(`with the daemon serving the cached credentials, vault ${PATH_TAKEN} too`, async () => {
    const started = await world.vault(['server', 'start']);
    expect(started.code, started.stderr).toBe(0);
    const run = await probe({ PROBE_EXIT: '3' }, () => {});
    expect(run.code).toBe(3);
    expect(run.probe.pid === run.vaultPid).toBe(REPLACES);
  }, 90_000);

  it('a command that is not on PATH is one vault: line and exit 127, as before', async () => {
    const result = await world.vault(['exec', 'account-a', '--', 'no-such-command-anywhere']);
    expect(result.code).toBe(127);
    expect(result.stderr).toBe('vault: command not found: no-such-command-anywhere; check the command name and PATH\n');
  }, 60_000);

  it('a script with no #! line (execve would refuse it) still runs, as execvp runs it: through /bin/sh', async () => {
    const script = join(world.home, 'plain-script');
    writeFileSync(script, 'exit 5\n');
    chmodSync(script, 0o755);
    const result = await world.vault(['exec', 'account-a', '--', script]);
    expect([result.code, result.stderr]).toEqual([5, '']);
  }, 60_000);

  it('no secret reached a log line, a file under HOME or an argument', () => {
    expect(world.leaks()).toEqual([]);
  });
});
