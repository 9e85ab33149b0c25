import { chainOf } from '@vault/core';
import type { Context } from './context.js';

/**
 * Whether a profile's chain starts from what this shell holds — `credential_source = Environment`
 * (its exported keys) or `EcsContainer` (its AWS_CONTAINER_* variables and authorization token).
 * The daemon is deliberately handed none of that (SECURITY.md §5), so such a profile is resolved
 * by the command itself, never asked of the daemon. A config that does not load says nothing here:
 * the local path reports it.
 */
export async function startsFromShellCredentials(ctx: Context, profile: string): Promise<boolean> {
  try {
    const root = chainOf((await ctx.config()).load(profile))[0]!;
    return root.credentialSource === 'Environment' || root.credentialSource === 'EcsContainer';
  } catch {
    return false;
  }
}
