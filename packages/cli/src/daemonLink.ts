import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CredentialKeyring, mfaTokenSource } from '@vault/core';
import {
  checkedStateLocation,
  crashedDaemon as crashedDaemonAt,
  daemonLocationEnv,
  ensureDaemon,
  findDaemon,
  stateDirInUse,
  superviseDaemon as superviseDaemonAt,
  UPSTREAM_MIN_LIFE_MS,
  type DaemonClient,
  type DaemonWatch,
  type StateLocation,
} from '@vault/server/client';
import type { Context } from './context.js';
import { daemonEnvironment } from './environment/daemonEnvironment.js';
import { DAEMON_STDIO_WITH_PASSPHRASE, PASSPHRASE_FD, PASSPHRASE_FD_VARIABLE, sendPassphrase } from './daemonPassphrase.js';

// The CLI's side of the daemon's life: how this command starts one (`vault server run`, with the
// file passphrase handed over a pipe) and what it asks the user (an MFA code, the passphrase).
// Finding, checking, waiting for and stopping a daemon is @vault/server/client's (daemonLife/).

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));

/** Where a new daemon keeps its state: VAULT_STATE_DIR, XDG_RUNTIME_DIR or HOME, refused when unsafe. */
export function stateLocationOf(ctx: Context): StateLocation {
  return checkedStateLocation(ctx.env);
}

/** The state directory of the daemon this command talks to (see stateDirInUse: the old place while its daemon runs). */
export function stateDir(ctx: Context): string {
  return stateDirInUse(stateLocationOf(ctx));
}

/**
 * `vault server run`, detached, with a scrubbed environment: what it needs from this command's —
 * STS endpoints, config path, backend, TTLs, the keychain's session bus (daemonEnvironment.ts) —
 * and nothing else, so no key exported in this shell lives on in it. For the file backend it is
 * handed the passphrase over a pipe on its fd 3 (read once at start), so it can unlock the keyring
 * without a terminal (like ssh-agent); never in its environment, never in an argument.
 */
function spawnDaemon(ctx: Context): ChildProcess {
  // daemonLocationEnv: the daemon must find the same state directory (and the old place).
  const env: NodeJS.ProcessEnv = { ...daemonEnvironment(ctx.env), ...daemonLocationEnv(stateLocationOf(ctx), ctx.homeDir) };
  if (ctx.options.backend) env.AWS_VAULT_BACKEND = ctx.options.backend;
  // The keyring flags, as the variables they stand for (paths made absolute: the daemon runs elsewhere).
  if (ctx.options.fileDir) env.AWS_VAULT_FILE_DIR = resolve(ctx.options.fileDir);
  if (ctx.options.passDir) env.AWS_VAULT_PASS_PASSWORD_STORE_DIR = resolve(ctx.options.passDir);
  if (ctx.options.passCmd) env.AWS_VAULT_PASS_CMD = ctx.options.passCmd;
  if (ctx.options.passPrefix !== undefined) env.AWS_VAULT_PASS_PREFIX = ctx.options.passPrefix;
  const passphrase = ctx.filePassphrase;
  if (passphrase !== undefined) env[PASSPHRASE_FD_VARIABLE] = String(PASSPHRASE_FD);
  const stdio = passphrase !== undefined ? [...DAEMON_STDIO_WITH_PASSPHRASE] : 'ignore';
  const child = spawn(process.execPath, [BIN, 'server', 'run'], { detached: true, stdio, env });
  if (passphrase !== undefined) sendPassphrase(child, passphrase);
  child.unref();
  return child;
}

/**
 * A running daemon, started in the background when there is none. A daemon started after a crash
 * restores the sessions the killed one held (from the keyring), with the same URIs and tokens.
 */
export async function daemon(ctx: Context): Promise<DaemonClient> {
  const dir = stateDir(ctx);
  // A daemon in the old place that does not answer is waited for, never joined by a second one.
  const spawnHere = dir === stateLocationOf(ctx).dir;
  const { client } = await ensureDaemon({ stateDir: dir, spawn: () => (spawnHere ? spawnDaemon(ctx) : undefined), timeoutMs: 10_000 });
  return client;
}

/** Opens the keyring now (asking for a file passphrase on the terminal) so a daemon started next is handed it. */
export async function unlockKeyring(ctx: Context): Promise<void> {
  const keyring = await ctx.keyring();
  if (keyring.backend === 'file') await new CredentialKeyring(keyring).profiles().then((names) => names[0] && keyring.get(names[0]));
}

/** The daemon that ended without stopping here (or in the old place), if one did: see crashedDaemon. */
export function crashedDaemon(ctx: Context): { pid: number; stateDir: string } | undefined {
  return crashedDaemonAt(stateLocationOf(ctx));
}

/**
 * The daemon a command needs to talk to: the running one; after a crash a new one, which brings
 * the killed daemon's sessions back (the next command restores them); undefined when none runs
 * and none crashed.
 */
export async function runningDaemon(ctx: Context): Promise<DaemonClient | undefined> {
  const found = await findDaemon(stateLocationOf(ctx));
  if (found.state === 'running') return found.client;
  if (found.state === 'none') return undefined;
  const crashed = found.pid;
  await unlockKeyring(ctx);
  const restarted = await daemon(ctx);
  const status = await restarted.status();
  if (status.pid !== crashed) {
    ctx.stderr.write(`vault: the daemon (pid ${crashed}) had ended without stopping; started a new one (pid ${status.pid}) with ${status.sessions} restored session(s)\n`);
  }
  return restarted;
}

/** While `vault exec --server`'s child runs: a daemon that dies is started again the way this command started it. */
export function superviseDaemon(ctx: Context, sessionId: string, options: { intervalMs?: number } = {}): DaemonWatch {
  return superviseDaemonAt({ stateDir: stateDir(ctx), sessionId, restart: () => daemon(ctx), stderr: ctx.stderr, ...options });
}

/**
 * The MFA code a new daemon session needs, asked here because the daemon never prompts: only when
 * no cached MFA session has enough life — judged as the daemon will judge it (the life it needs
 * to serve a session, and an explicit --duration), so that it never starts without a code it
 * needs. Also unlocks the keyring first, so a file-backend passphrase is known before the daemon is spawned.
 */
export async function mfaCodeForDaemon(
  ctx: Context,
  profile: string,
  options: { mfaToken?: string; region?: string; noSession?: boolean; durationSeconds?: number },
): Promise<string | undefined> {
  const chain = await ctx.chain(profile, {
    region: options.region,
    mfaToken: options.mfaToken,
    noSession: options.noSession,
    minLifeMs: UPSTREAM_MIN_LIFE_MS,
    ...(options.durationSeconds ? { durationSeconds: options.durationSeconds } : {}),
  });
  if (options.mfaToken !== undefined) return options.mfaToken;
  if (!(await chain.needsMfaCode())) return undefined;
  const source = mfaTokenSource({ mfaProcess: chain.target.mfaProcess, prompt: ctx.mfaPrompt(), env: ctx.env });
  return source({ serial: chain.mfaSerial!, profile });
}

/**
 * Signs in to IAM Identity Center here, when the profile's chain starts at an SSO profile and no
 * cached sign-in (or refresh token) can serve it: the daemon that is handed the profile next
 * never prompts and never opens a browser, so it finds the token in the keyring.
 */
export async function ssoSignInForDaemon(ctx: Context, profile: string, options: { region?: string | undefined; stdout: boolean }): Promise<void> {
  const chain = await ctx.chain(profile, { ...(options.region ? { region: options.region } : {}), stdout: options.stdout });
  if (await chain.needsSsoSignIn()) await chain.renewSsoSignIn();
}
