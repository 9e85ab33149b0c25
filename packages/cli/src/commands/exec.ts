import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { VaultError } from '@vault/core';
import type { Context } from '../context.js';
import { credentialsFromDaemon } from '../daemonCredentials.js';
import { childEnvironment } from '../format/childEnv.js';
import { enclosingExec, withoutSessionMarker } from '../format/sessionShell.js';
import { chainOptions, type CredentialOptions } from './options.js';

export interface ExecInput extends CredentialOptions {
  command: string[];
  server?: boolean;
  ecsServer?: boolean;
  ec2Server?: boolean;
  lazy?: boolean;
}

/** Runs the command with credentials for the profile and hands back its exit code. */
export async function exec(input: ExecInput, ctx: Context): Promise<number> {
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
    return runChild(commandLine(input.command, ctx.env), withoutSessionMarker(childEnvironment(ctx.env, fromDaemon.credentials, input.profile, fromDaemon.region)), ctx);
  }
  const chain = await ctx.chain(input.profile, options);
  const credentials = await chain.credentials();
  const env = withoutSessionMarker(childEnvironment(ctx.env, credentials, input.profile, chain.region));
  return runChild(commandLine(input.command, ctx.env), env, ctx);
}

export function commandLine(command: string[], env: NodeJS.ProcessEnv): string[] {
  return command.length > 0 ? command : [env.SHELL || '/bin/sh'];
}

/** Forwarded to the child; SIGINT only when no terminal would deliver it to the child itself. */
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGINT'];

/** Spawns the child with inherited stdio, forwards signals, resolves to its exit code (128+signal). */
export function runChild(command: string[], env: NodeJS.ProcessEnv, ctx: Context): Promise<number> {
  const [file, ...args] = command as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'inherit', env });
    const interactive = process.stdin.isTTY === true;
    const handlers = new Map<NodeJS.Signals, () => void>();
    for (const signal of FORWARDED) {
      // The terminal already sends SIGINT/SIGQUIT to the whole foreground group, child included.
      const handler = () => {
        if (interactive && (signal === 'SIGINT' || signal === 'SIGQUIT')) return;
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
      resolve(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1));
    });
  });
}
