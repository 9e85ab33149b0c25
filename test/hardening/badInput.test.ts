import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mfaTokenSource, VaultError } from '@vault/core';
import { readmeConfig, MFA_SERIAL, World } from '../support/world.js';
import { expectOneLineError, runVault, type VaultRun } from './cli.js';

/**
 * Bad configuration and input, table-driven through the built CLI: every case must end
 * with exactly one line on stderr starting `vault: `, a non-zero exit, no stack trace, and no
 * secret anywhere in what was printed.
 */
const PASSPHRASE = 'e2e-file-passphrase';

interface Case {
  name: string;
  args: string[];
  /** Replaces ~/.aws/config for this case (written to its own file, passed as AWS_CONFIG_FILE). */
  config?: string;
  env?: NodeJS.ProcessEnv;
  /** What the one line must say. */
  says: RegExp;
  /** The error can only be known after STS answered (everything else is refused before any STS call). */
  sts?: boolean;
  /** Makes the bad place the case names; it must hold nothing new afterwards. */
  place?: { path: string; make: () => void };
}

const GOOD = readmeConfig();
const ROLE = 'arn:aws:iam::222222222222:role/account-a-assume-role';
const section = (name: string, ...lines: string[]) => `[profile ${name}]\n${lines.join('\n')}\n`;
/** A profile reaching account-a's role through the stored central key, with the given extra lines. */
const withRole = (...lines: string[]) => `${GOOD}\n${section('bad', 'source_profile = central-account', `role_arn = ${ROLE}`, ...lines)}`;
/**
 * A profile with a key of its own (stored in beforeAll) and an MFA device of its own, so no MFA
 * session cached by another case stands in for the process.
 */
const withMfaProcess = (command: string) => `${GOOD}\n${section('mp', 'mfa_serial = arn:aws:iam::111111111111:mfa/mp-device', `mfa_process = ${command}`)}`;
const KEY_ENV = (id: string, secret: string) => ({ AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret });

/** Bad state places for the daemon, each made by its case (one directory per run of this file). */
const BAD_PLACES = join(tmpdir(), `vault-badstate-${process.pid}`);
const OTHER_UID = 65_534; // nobody
const badPlace = (name: string) => join(BAD_PLACES, name);
const missing = (name: string) => ({ path: badPlace(name), make: () => rmSync(badPlace(name), { recursive: true, force: true }) });
const aFile = (name: string) => ({ path: badPlace(name), make: () => writeFileSync(badPlace(name), '') });
const aDir = (name: string, mode: number, uid?: number) => ({
  path: badPlace(name),
  make: () => {
    mkdirSync(badPlace(name), { recursive: true });
    chmodSync(badPlace(name), mode);
    if (uid !== undefined) chownSync(badPlace(name), uid, uid);
  },
});
/** What a bad place holds: nothing for a directory, a missing place stays missing. */
function contents(path: string): string {
  if (!existsSync(path)) return 'missing';
  if (!statSync(path).isDirectory()) return 'a file';
  const names = readdirSync(path);
  return names.length === 0 ? 'empty' : names.join(',');
}

const CASES: Case[] = [
  // --- the config file -----------------------------------------------------------------------------
  { name: 'malformed ini: a section header without ]', args: ['exec', 'account-a', '--', 'true'], config: `${GOOD}\n[profile broken\nregion = x\n`, says: /section header has no closing '\]'/ },
  { name: 'malformed ini: NUL bytes (a binary file)', args: ['exec', 'account-a', '--', 'true'], config: `${GOOD}\0\0\x01\x02`, says: /is not a text file/ },
  { name: 'the config path is a directory', args: ['exec', 'account-a', '--', 'true'], env: { AWS_CONFIG_FILE: '/' }, says: /config|directory/i },
  { name: 'unknown profile (exec)', args: ['exec', 'no-such-profile', '--', 'true'], says: /no-such-profile/ },
  { name: 'unknown profile (export)', args: ['export', 'no-such-profile'], says: /no-such-profile/ },
  { name: 'a source_profile cycle', args: ['exec', 'cyc-a', '--', 'true'], config: `${GOOD}\n${section('cyc-a', 'source_profile = cyc-b', `role_arn = ${ROLE}`)}\n${section('cyc-b', 'source_profile = cyc-a', `role_arn = ${ROLE}`)}`, says: /cyc-a.*cyc-b|cycle/i },
  { name: 'a profile that is its own source', args: ['exec', 'self', '--', 'true'], config: `${GOOD}\n${section('self', 'source_profile = self', `role_arn = ${ROLE}`)}`, says: /self/ },
  { name: 'an include_profile cycle', args: ['exec', 'inc-a', '--', 'true'], config: `${GOOD}\n${section('inc-a', 'include_profile = inc-b')}\n${section('inc-b', 'include_profile = inc-a')}`, says: /inc-a|inc-b/ },
  { name: 'a missing source_profile', args: ['exec', 'orphan', '--', 'true'], config: `${GOOD}\n${section('orphan', 'source_profile = nowhere', `role_arn = ${ROLE}`)}`, says: /nowhere/ },
  { name: 'role_arn that is not an ARN', args: ['exec', 'bad', '--', 'true'], config: `${GOOD}\n${section('bad', 'source_profile = central-account', 'role_arn = not-an-arn')}`, says: /role_arn/ },
  { name: 'role_arn of a user, not a role', args: ['exec', 'bad', '--', 'true'], config: `${GOOD}\n${section('bad', 'source_profile = central-account', 'role_arn = arn:aws:iam::222222222222:user/someone')}`, says: /role_arn/ },
  { name: 'role_arn with an 11-digit account', args: ['exec', 'bad', '--', 'true'], config: `${GOOD}\n${section('bad', 'source_profile = central-account', 'role_arn = arn:aws:iam::22222222222:role/x')}`, says: /role_arn/ },
  { name: 'mfa_serial that is not an ARN', args: ['exec', 'bad', '-t', '123456', '--', 'true'], config: withRole('mfa_serial = my-phone'), says: /mfa_serial/ },
  { name: 'duration_seconds below 900', args: ['exec', 'bad', '-t', '123456', '--', 'true'], config: withRole('duration_seconds = 100'), says: /duration_seconds/ },
  { name: 'duration_seconds above 43200', args: ['exec', 'bad', '-t', '123456', '--', 'true'], config: withRole('duration_seconds = 50000'), says: /duration_seconds/ },
  { name: 'duration_seconds not a number', args: ['exec', 'bad', '-t', '123456', '--', 'true'], config: withRole('duration_seconds = an hour'), says: /duration_seconds/ },
  { name: 'session_tags without =', args: ['exec', 'bad', '-t', '123456', '--', 'true'], config: withRole('session_tags = Team'), says: /session_tags/ },
  // --- flags and variables -------------------------------------------------------------------------
  { name: '--duration below 15 minutes', args: ['exec', '-d', '5m', 'account-a', '-t', '123456', '--', 'true'], says: /duration/i },
  { name: '--duration above 12 hours', args: ['exec', '-d', '13h', 'account-a', '-t', '123456', '--', 'true'], says: /duration/i },
  { name: '--duration that is not a duration', args: ['exec', '-d', 'banana', 'account-a', '-t', '123456', '--', 'true'], says: /duration/i },
  { name: 'an MFA code with letters (-t 12ab)', args: ['exec', 'account-a', '-t', '12ab', '--', 'true'], says: /MFA code .*6 digits/ },
  { name: 'an MFA code of 7 digits (-t 1234567)', args: ['exec', 'account-a', '-t', '1234567', '--', 'true'], says: /MFA code .*6 digits/ },
  { name: 'an MFA code of 5 digits (-t 12345)', args: ['export', 'account-a', '-t', '12345'], says: /MFA code .*6 digits/ },
  { name: 'an empty MFA code (-t "")', args: ['exec', 'account-a', '-t', '', '--', 'true'], says: /MFA code .*6 digits/ },
  { name: 'an MFA code with letters for session start (-t 12ab)', args: ['session', 'start', '-t', '12ab', 'account-a'], says: /MFA code from --mfa-token is not 6 digits/ },
  { name: 'an MFA code of 7 digits for exec --server (-t 1234567)', args: ['exec', '--server', 'account-a', '-t', '1234567', '--', 'true'], says: /MFA code from --mfa-token is not 6 digits/ },
  { name: 'an MFA code of 5 digits for exec --ec2-server (-t 12345)', args: ['exec', '--ec2-server', 'account-a', '-t', '12345', '--', 'true'], says: /MFA code from --mfa-token is not 6 digits/ },
  { name: 'an MFA code of 5 digits for session renew (-t 12345)', args: ['session', 'renew', '-t', '12345', '0123abcd'], says: /MFA code from --mfa-token is not 6 digits/ },
  { name: 'AWS_MIN_TTL that is not a duration', args: ['exec', 'account-a', '-t', '123456', '--', 'true'], env: { AWS_MIN_TTL: 'soon' }, says: /AWS_MIN_TTL/ },
  { name: 'AWS_SESSION_TOKEN_TTL that is not a duration', args: ['export', 'central-account', '-t', '123456'], env: { AWS_SESSION_TOKEN_TTL: 'forever' }, says: /AWS_SESSION_TOKEN_TTL/ },
  { name: 'an unknown backend (AWS_VAULT_BACKEND)', args: ['list'], env: { AWS_VAULT_BACKEND: 'bogus' }, says: /unknown keyring backend "bogus" \(AWS_VAULT_BACKEND\)/ },
  { name: 'an unknown backend (--backend)', args: ['--backend', 'bogus', 'list'], says: /unknown keyring backend "bogus" \(--backend\)/ },
  // --- usage errors commander finds -----------------------------------------------------------------
  { name: 'an unknown option, with a suggestion', args: ['--bckend', 'file', 'list'], says: /unknown option '--bckend' \(Did you mean --backend\?\); see `vault --help`/ },
  { name: 'an unknown command', args: ['exce', 'account-a'], says: /unknown command 'exce'.*; see `vault --help`/ },
  { name: 'a missing argument of a subcommand', args: ['session', 'start'], says: /missing required argument 'profile'; see `vault session start --help`/ },
  { name: "aws-vault's kwallet backend (--backend)", args: ['--backend', 'kwallet', 'list'], says: /"kwallet" keyring backend of aws-vault is not supported/ },
  { name: 'exec inside another vault exec (AWS_VAULT set)', args: ['exec', 'account-a', '-t', '123456', '--', 'true'], env: { AWS_VAULT: 'account-b' }, says: /AWS_VAULT|inside/ },
  { name: 'exec of a command that does not exist', args: ['exec', 'account-a', '-t', '123456', '--', '/nonexistent/command'], says: /\/nonexistent\/command/, sts: true },
  // --- vault add --env -----------------------------------------------------------------------------
  { name: 'add --env: a key id that is not a key id', args: ['add', '--env', 'newbie'], env: KEY_ENV('hello', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'), says: /access key id is not an AWS access key id/ },
  { name: 'add --env: a key id in lower case', args: ['add', '--env', 'newbie'], env: KEY_ENV('akiaiosfodnn7example', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'), says: /access key id is not an AWS access key id/ },
  { name: 'add --env: the secret pasted as the key id', args: ['add', '--env', 'newbie'], env: KEY_ENV('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'), says: /access key id is not an AWS access key id/ },
  { name: 'add --env: a secret that is not a secret key', args: ['add', '--env', 'newbie'], env: KEY_ENV('AKIAIOSFODNN7EXAMPLE', 'short'), says: /secret access key is not an AWS secret key/ },
  { name: 'add --env: the variables missing', args: ['add', '--env', 'newbie'], says: /--env needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/ },
  // --- mfa_process ---------------------------------------------------------------------------------
  // mfa_process's own stderr is the user's terminal by design (ykman says "touch your key" there);
  // head's complaint about the pipe vault closed is silenced so that vault's own output is judged.
  { name: 'mfa_process printing 10 MB', args: ['exec', 'mp', '--', 'true'], config: withMfaProcess('yes 1 | head -c 10000000 2>/dev/null'), says: /mfa_process of profile mp printed more than 1024 bytes/ },
  { name: 'mfa_process printing binary', args: ['exec', 'mp', '--', 'true'], config: withMfaProcess('head -c 200 /bin/sh'), says: /MFA code from mfa_process is not 6 digits/ },
  { name: 'mfa_process printing a 7-digit code', args: ['exec', 'mp', '--', 'true'], config: withMfaProcess('echo 1234567'), says: /MFA code from mfa_process is not 6 digits/ },
  { name: 'mfa_process exiting non-zero', args: ['exec', 'mp', '--', 'true'], config: withMfaProcess('exit 3'), says: /mfa_process of profile mp exited with code 3/ },
  { name: 'mfa_process killed by a signal', args: ['exec', 'mp', '--', 'true'], config: withMfaProcess('kill -9 $$'), says: /mfa_process of profile mp .*SIGKILL/ },
  // --- where the daemon keeps its socket ------------------------------------------------------------
  { name: 'VAULT_STATE_DIR that does not exist', args: ['server', 'start'], env: { VAULT_STATE_DIR: badPlace('missing') }, place: missing('missing'), says: /VAULT_STATE_DIR \S+missing does not exist; create it with `mkdir -m 700 / },
  { name: 'VAULT_STATE_DIR that is a file', args: ['server', 'start'], env: { VAULT_STATE_DIR: badPlace('file') }, place: aFile('file'), says: /VAULT_STATE_DIR \S+file is not a directory/ },
  { name: 'VAULT_STATE_DIR writable by everyone', args: ['server', 'start'], env: { VAULT_STATE_DIR: badPlace('open') }, place: aDir('open', 0o777), says: /VAULT_STATE_DIR \S+open is writable by other users/ },
  { name: 'VAULT_STATE_DIR owned by another user', args: ['server', 'start'], env: { VAULT_STATE_DIR: badPlace('theirs') }, place: aDir('theirs', 0o700, OTHER_UID), says: /VAULT_STATE_DIR \S+theirs belongs to another user/ },
  { name: 'XDG_RUNTIME_DIR set but missing (server start)', args: ['server', 'start'], env: { XDG_RUNTIME_DIR: badPlace('gone') }, place: missing('gone'), says: /XDG_RUNTIME_DIR \S+gone does not exist; .*unset XDG_RUNTIME_DIR/ },
  { name: 'XDG_RUNTIME_DIR set but missing (exec asks for a daemon)', args: ['exec', 'account-a', '-t', '123456', '--', 'true'], env: { XDG_RUNTIME_DIR: badPlace('gone') }, place: missing('gone'), says: /XDG_RUNTIME_DIR \S+gone does not exist/ },
  { name: 'XDG_RUNTIME_DIR that is a file', args: ['session', 'ls'], env: { XDG_RUNTIME_DIR: badPlace('rfile') }, place: aFile('rfile'), says: /XDG_RUNTIME_DIR \S+rfile is not a directory/ },
  { name: 'XDG_RUNTIME_DIR writable by everyone (like /tmp)', args: ['server', 'start'], env: { XDG_RUNTIME_DIR: badPlace('ropen') }, place: aDir('ropen', 0o1777), says: /XDG_RUNTIME_DIR \S+ropen is writable by other users/ },
  { name: 'XDG_RUNTIME_DIR owned by another user', args: ['server', 'status'], env: { XDG_RUNTIME_DIR: badPlace('rtheirs') }, place: aDir('rtheirs', 0o700, OTHER_UID), says: /XDG_RUNTIME_DIR \S+rtheirs belongs to another user/ },
  { name: 'XDG_RUNTIME_DIR that is a relative path', args: ['server', 'start'], env: { XDG_RUNTIME_DIR: 'run/user' }, says: /XDG_RUNTIME_DIR "run\/user" is not an absolute path/ },
];

let world: World;
let caseDir: string;
const figures: string[] = [];

describe('bad configuration and input, through the built CLI: one vault: line, a non-zero exit, nothing lost', () => {
  beforeAll(async () => {
    world = await World.create('file');
    const added = await world.vault(['add', '--env', 'central-account'], KEY_ENV(world.user.accessKeyId, world.user.secretAccessKey));
    expect(added.code, added.stderr).toBe(0);
    const mp = await world.vault(['add', '--env', 'mp'], KEY_ENV(world.user.accessKeyId, world.user.secretAccessKey));
    expect(mp.code, mp.stderr).toBe(0);
    caseDir = join(world.home, 'cases');
    mkdirSync(caseDir);
  });

  afterAll(async () => {
    rmSync(BAD_PLACES, { recursive: true, force: true });
    for (const line of figures) console.log(line);
    if (world) {
      const leaks = world.leaks();
      await world.close();
      expect(leaks).toEqual([]);
    }
  });

  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    const env: NodeJS.ProcessEnv = { ...c.env };
    if (c.config !== undefined) {
      const file = join(caseDir, `config-${i}`);
      writeFileSync(file, c.config);
      env.AWS_CONFIG_FILE = file;
    }
    if (c.place) {
      mkdirSync(BAD_PLACES, { recursive: true, mode: 0o700 });
      c.place.make();
    }
    const before = c.place ? contents(c.place.path) : undefined;
    const stsBefore = world.mintingCalls();
    const run: VaultRun = await runVault(c.args, world.env(env), { timeoutMs: 30_000 });
    world.capture(`case ${i} (${c.name}) stdout`, run.stdout);
    world.capture(`case ${i} (${c.name}) stderr`, run.stderr);
    world.capture(`case ${i} (${c.name}) cmdline`, run.cmdline);
    const line = expectOneLineError(run, c.says);
    expect(run.stdout, 'nothing on stdout').toBe('');
    if (!c.sts) expect(world.mintingCalls(), 'refused before any STS call').toBe(stsBefore);
    if (c.place) expect(contents(c.place.path), `nothing created in ${c.place.path}`).toBe(before);
    figures.push(`FIGURE badInput case=${JSON.stringify(c.name)} exit=${run.code} line=${JSON.stringify(line)}`);
  });

});

describe('mfa_process that hangs (its timeout, in-process: the CLI waits 60 s)', () => {
  it('is stopped after the timeout with one clear line', async () => {
    // `sleep 600` outlives the test's 30 s timeout: a process that was not stopped fails the test.
    const source = mfaTokenSource({ mfaProcess: 'sleep 600', processTimeoutMs: 300 });
    const started = performance.now();
    const error = await source({ serial: MFA_SERIAL, profile: 'mp' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(VaultError);
    expect((error as VaultError).toLine()).toMatch(/^mfa_process of profile mp did not finish within 0\.3 s/);
    console.log(`FIGURE badInput mfa_process timeout=300ms stoppedAfter=${Math.round(performance.now() - started)}ms`);
  });
});
