import { existsSync } from 'node:fs';
import type { Credentials } from '@vault/core';
import type { Context } from '../context.js';
import { formatCredentials, type ExportFormat } from '../format/exportFormats.js';
import { chainOptions, type CredentialOptions } from './options.js';

export interface ExportInput extends CredentialOptions {
  format: ExportFormat;
}

/** Prints credentials; with `--format json` this is a `credential_process`. Prompts go to the terminal only. */
export async function exportCommand(input: ExportInput, ctx: Context): Promise<number> {
  const live = await fromLiveSession(input, ctx);
  if (live) {
    ctx.stdout.write(formatCredentials(input.format, live.credentials, input.profile, live.region));
    return 0;
  }
  const chain = await ctx.chain(input.profile, chainOptions(input));
  const credentials = await chain.credentials();
  ctx.stdout.write(formatCredentials(input.format, credentials, input.profile, chain.region));
  return 0;
}

/**
 * A live daemon session for the profile answers from its cache, so a hundred credential_process
 * calls cause no STS call and no prompt. Only asked when the daemon's socket exists, and only
 * when no option asks for something the session was not started with.
 */
async function fromLiveSession(input: ExportInput, ctx: Context): Promise<{ credentials: Credentials; region: string | undefined } | undefined> {
  if (input.duration !== undefined || input.session === false || input.mfaToken !== undefined) return undefined;
  const { daemonPaths, defaultStateDir, DaemonClient } = await import('@vault/server/client');
  const paths = daemonPaths(defaultStateDir(ctx.env));
  if (!existsSync(paths.socket)) return undefined;
  try {
    const found = await new DaemonClient({ socketPath: paths.socket, timeoutMs: 2_000 }).credentialsForProfile(input.profile);
    if (!found) return undefined;
    return { credentials: found, region: input.region ?? found.region };
  } catch (error) {
    ctx.logger.debug({ err: String(error) }, 'daemon did not answer; resolving locally');
    return undefined;
  }
}
