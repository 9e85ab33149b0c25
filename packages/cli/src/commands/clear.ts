import type { Context } from '../context.js';

export interface ClearInput {
  profile?: string;
}

export async function clear(input: ClearInput, ctx: Context): Promise<number> {
  const cache = await ctx.credentialCache();
  const cleared = await cache.clear(input.profile ? new Set([input.profile]) : undefined);
  ctx.stderr.write(`Cleared ${cleared} cached credential${cleared === 1 ? '' : 's'}.\n`);
  return 0;
}
