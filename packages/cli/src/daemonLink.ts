import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mfaTokenSource } from '@vault/core';
import { DaemonClient, defaultStateDir, ensureDaemon } from '@vault/server/client';
import type { Context } from './context.js';
import { mfaPrompt } from './prompt/mfaPrompt.js';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));

export function stateDir(ctx: Context): string {
  return defaultStateDir(ctx.env);
}

/**
 * A running daemon, started in the background when there is none (`vault server run`, detached).
 * It inherits this command's environment — STS endpoints, config path, backend — and, for the file
 * backend, the passphrase, so it can unlock the keyring without a terminal (like ssh-agent).
 */
export async function daemon(ctx: Context): Promise<DaemonClient> {
  const dir = stateDir(ctx);
  const { client } = await ensureDaemon({
    stateDir: dir,
    spawn: () => {
      const env: NodeJS.ProcessEnv = { ...ctx.env, VAULT_STATE_DIR: dir };
      if (ctx.options.backend) env.AWS_VAULT_BACKEND = ctx.options.backend;
      if (ctx.unlockedPassphrase !== undefined) env.AWS_VAULT_FILE_PASSPHRASE = ctx.unlockedPassphrase;
      const child = spawn(process.execPath, [BIN, 'server', 'run'], { detached: true, stdio: 'ignore', env });
      child.unref();
      return child;
    },
    timeoutMs: 10_000,
  });
  return client;
}

/**
 * The MFA code a new daemon session needs, asked here because the daemon never prompts: only when
 * no cached MFA session has enough life. Also unlocks the keyring first, so a file-backend
 * passphrase is known before the daemon is spawned.
 */
export async function mfaCodeForDaemon(ctx: Context, profile: string, options: { mfaToken?: string; region?: string; noSession?: boolean }): Promise<string | undefined> {
  const chain = await ctx.chain(profile, { region: options.region, mfaToken: options.mfaToken, noSession: options.noSession });
  if (options.mfaToken !== undefined) return options.mfaToken;
  if (!(await chain.needsMfaCode())) return undefined;
  const source = mfaTokenSource({ mfaProcess: chain.target.mfaProcess, prompt: mfaPrompt(ctx.promptDriver(), ctx.ask), env: ctx.env });
  return source({ serial: chain.mfaSerial!, profile });
}
