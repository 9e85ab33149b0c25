import type { Context } from '../context.js';

export interface ClearInput {
  profile?: string;
}

export async function clear(input: ClearInput, ctx: Context): Promise<number> {
  const sessions = await ctx.sessionKeyring();
  const cleared = await sessions.clear(input.profile ? new Set([input.profile]) : undefined);
  ctx.stderr.write(`Cleared ${cleared} session${cleared === 1 ? '' : 's'}.\n`);
  return 0;
}
