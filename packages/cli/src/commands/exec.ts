import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { VaultError } from '@vault/core';
import type { Context } from '../context.js';
import { credentialsFromDaemon } from '../daemonCredentials.js';
import { dieOfSignalOnExit } from '../exitSignal.js';
import { replaceProcess } from '../replaceProcess.js';
import { childEnvironment } from '../environment/childEnvironment.js';
import { enclosingExec, withoutSessionMarker } from '../environment/sessionShell.js';
import { chainOptions, type CredentialOptions } from './options.js';
import { profileOrAwsProfile } from './profileArgument.js';

export interface ExecInput extends CredentialOptions {
  command: string[];
  server?: boolean;
  ecsServer?: boolean;
  ec2Server?: boolean;
  lazy?: boolean;
  /** aws-vault's deprecated `exec --json`: print credential_process JSON instead of running anything. */
  json?: boolean;
}

/** Runs the command with credentials for the profile (named, else AWS_PROFILE) and hands back its exit code. */
export async function exec(given: Omit<ExecInput, 'profile'> & { profile?: string | undefined }, ctx: Context): Promise<number> {
  const input: ExecInput = { ...given, profile: profileOrAwsProfile(given.profile, ctx.env, 'exec') };
  if (input.json) {
    if (input.server || input.ecsServer || input.ec2Server) {
      throw new VaultError('USAGE', '--json cannot be used with --server, --ecs-server or --ec2-server', {
        hint: 'use `vault export --format json PROFILE` for credential_process, or a server without --json',
      });
    }
    if (input.command.length > 0) {
      throw new VaultError('USAGE', `--json prints credentials and runs no command`, {
        hint: `drop the command, or drop --json to run it with credentials`,
      });
    }
    const { exportCommand } = await import('./export.js');
    return exportCommand({ ...input, format: 'json' }, ctx);
  }
  const enclosing = enclosingExec(ctx.env);
  if (enclosing !== undefined) {
    throw new VaultError('NESTED_VAULT', `vault exec is already running in this shell (AWS_VAULT=${enclosing})`, {
      hint: 'exit that subshell first, or unset AWS_VAULT if you really mean to nest',
    });
  }
  if (input.server || input.ecsServer || input.ec2Server) {
    const { execWithServer } = await import('./execServer.js');
    return execWithServer(input, ctx);
  }
  const options = chainOptions(input);
  const fromDaemon = await credentialsFromDaemon(ctx, { profile: input.profile, ...options });
  if (fromDaemon) {
    return runCommand(commandLine(input.command, ctx.env), withoutSessionMarker(childEnvironment(ctx.env, fromDaemon.credentials, input.profile, fromDaemon.region)), ctx);
  }
  const chain = await ctx.chain(input.profile, options);
  const credentials = await chain.credentials();
  const env = withoutSessionMarker(childEnvironment(ctx.env, credentials, input.profile, chain.region));
  return runCommand(commandLine(input.command, ctx.env), env, ctx);
}

/**
 * Becomes the command where Node can (replaceProcess.ts), else runs it as a child. Only when vault
 * is its own process: main() called in-process (a test, an embedding program) must not be replaced.
 */
function runCommand(command: string[], env: NodeJS.ProcessEnv, ctx: Context): Promise<number> {
  if (ctx.stdout === process.stdout && ctx.stderr === process.stderr) replaceProcess(command, env);
  return runChild(command, env, ctx);
}

export function commandLine(command: string[], env: NodeJS.ProcessEnv): string[] {
  return command.length > 0 ? command : [env.SHELL || '/bin/sh'];
}

/** Signals vault passes on to its child. */
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGINT'];

/**
 * Signals a terminal sends by itself to its whole foreground process group (^C, ^\, a resize).
 * The child runs in vault's process group, so when vault is that foreground group the child
 * already has the signal: forwarding it would deliver it twice, and Terraform takes a second
 * SIGINT as "exit now, skip cleanup".
 */
const FROM_THE_TERMINAL = new Set<NodeJS.Signals>(['SIGINT', 'SIGQUIT', 'SIGWINCH']);

/**
 * Whether this process is in the foreground process group of its controlling terminal, asked when
 * a signal arrives (a job can be moved to the background). Whether standard input is a terminal
 * says nothing about that (`vault exec p -- terraform apply < /dev/null` is still in the
 * terminal's foreground and gets its ^C). Node has no siginfo to tell who sent a signal, so this
 * is the test: in the foreground, a SIGINT came from the terminal to the whole group (or was sent
 * to vault alone while it is in the foreground, which is then not passed on); otherwise — no
 * terminal, or a background job — it was sent to vault and is passed on once.
 */
export function inTerminalForeground(): boolean {
  try {
    // /proc/self/stat: after the command name in parentheses come state, ppid, pgrp, session,
    // tty_nr, tpgid (proc(5)); tpgid is -1 without a controlling terminal.
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgrp = Number(fields[2]);
    const tpgid = Number(fields[5]);
    return tpgid > 0 && tpgid === pgrp;
  } catch {
    // Not Linux: ps(1) reports the same two numbers (macOS and the BSDs know tpgid too).
    try {
      const [pgid, tpgid] = execFileSync('ps', ['-o', 'pgid=,tpgid=', '-p', String(process.pid)], { encoding: 'utf8', timeout: 2000 }).trim().split(/\s+/).map(Number);
      return tpgid !== undefined && tpgid > 0 && tpgid === pgid;
    } catch {
      return process.stdin.isTTY === true;
    }
  }
}

/**
 * Spawns the child in vault's process group with inherited stdio, passes signals on (each one
 * reaches the child once), and resolves to its exit code. A child killed by a signal resolves to
 * 128+n and has vault die of the same signal once the command has cleaned up (exitSignal.ts).
 */
export function runChild(command: string[], env: NodeJS.ProcessEnv, ctx: Context): Promise<number> {
  const [file, ...args] = command as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'inherit', env });
    const handlers = new Map<NodeJS.Signals, () => void>();
    for (const signal of FORWARDED) {
      const handler = () => {
        if (FROM_THE_TERMINAL.has(signal) && inTerminalForeground()) return;
        child.kill(signal);
      };
      handlers.set(signal, handler);
      process.on(signal, handler);
    }
    const cleanup = () => {
      for (const [signal, handler] of handlers) process.off(signal, handler);
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      cleanup();
      if (error.code === 'ENOENT') {
        ctx.stderr.write(`vault: command not found: ${file}; check the command name and PATH\n`);
        resolve(127);
      } else if (error.code === 'EACCES') {
        ctx.stderr.write(`vault: permission denied running ${file}; check it is executable\n`);
        resolve(126);
      } else reject(error);
    });
    child.on('exit', (code, signal) => {
      cleanup();
      if (signal) {
        dieOfSignalOnExit(signal);
        resolve(128 + (constants.signals[signal] ?? 0));
      } else resolve(code ?? 1);
    });
  });
}
