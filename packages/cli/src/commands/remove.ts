import { VaultError } from '@vault/core';
import type { Context } from '../context.js';
import { profilesUsingKey } from '../profilesUsingKey.js';

export interface RemoveInput {
  profile: string;
  force?: boolean;
}

export async function remove(input: RemoveInput, ctx: Context): Promise<number> {
  const credentials = await ctx.credentialKeyring();
  if (!(await credentials.has(input.profile))) {
    throw new VaultError('KEY_NOT_FOUND', `profile ${input.profile} has no stored key`, { hint: 'see `vault list` for the profiles that have one' });
  }
  if (!input.force) {
    const answer = await ctx.ask(`Delete credentials for profile "${input.profile}"? (y|N) `);
    if (!/^y(es)?$/i.test(answer)) {
      ctx.stderr.write('Nothing deleted.\n');
      return 1;
    }
  }
  await credentials.remove(input.profile);
  const cache = await ctx.credentialCache();
  const cleared = await cache.clear(profilesUsingKey(await ctx.config(), input.profile));
  ctx.stderr.write(`Deleted credentials for profile "${input.profile}"${cleared ? ` and ${cleared} cached credential(s)` : ''}.\n`);
  return 0;
}
