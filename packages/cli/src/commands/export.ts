import type { Context } from '../context.js';
import { credentialsFromDaemon } from '../daemonCredentials.js';
import { formatCredentials, type ExportFormat } from '../format/exportFormats.js';
import { chainOptions, type CredentialOptions } from './options.js';
import { profileOrAwsProfile } from './profileArgument.js';

export interface ExportInput extends CredentialOptions {
  format: ExportFormat;
}

/**
 * Prints credentials; with `--format json` this is a `credential_process`. Prompts go to the
 * terminal only. A running daemon answers first — from a live session of the profile when there
 * is one, else from its open keyring — so a hundred credential_process calls cause no STS call,
 * no prompt and no keyring unlock.
 */
export async function exportCommand(given: Omit<ExportInput, 'profile'> & { profile?: string | undefined }, ctx: Context): Promise<number> {
  const input: ExportInput = { ...given, profile: profileOrAwsProfile(given.profile, ctx.env, 'export') };
  const options = chainOptions(input);
  const fromDaemon = await credentialsFromDaemon(ctx, { profile: input.profile, ...options, preferSession: true });
  if (fromDaemon) {
    ctx.stdout.write(formatCredentials(input.format, fromDaemon.credentials, input.profile, input.region ?? fromDaemon.region));
    return 0;
  }
  const chain = await ctx.chain(input.profile, options);
  const credentials = await chain.credentials();
  ctx.stdout.write(formatCredentials(input.format, credentials, input.profile, chain.region));
  return 0;
}
