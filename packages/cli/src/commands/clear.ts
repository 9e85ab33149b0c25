import { SsoTokenKeyring } from '@vault/core';
import type { Context } from '../context.js';

export interface ClearInput {
  profile?: string;
}

/**
 * Removes cached credentials, and IAM Identity Center sign-ins: all of them, or one profile's (for
 * an SSO profile, the sign-in of its start URL, which every profile under that URL shares).
 */
export async function clear(input: ClearInput, ctx: Context): Promise<number> {
  const cache = await ctx.credentialCache();
  const cleared = await cache.clear(input.profile ? new Set([input.profile]) : undefined);
  const tokens = new SsoTokenKeyring(cache.keyring);
  let signIns = 0;
  if (input.profile === undefined) {
    for (const startUrl of await tokens.startUrls()) if (await tokens.remove(startUrl)) signIns += 1;
  } else {
    const startUrl = await ssoStartUrl(ctx, input.profile);
    if (startUrl !== undefined && (await tokens.remove(startUrl))) signIns += 1;
  }
  const signInText = signIns === 0 ? '' : ` and ${signIns} IAM Identity Center sign-in${signIns === 1 ? '' : 's'}`;
  ctx.stderr.write(`Cleared ${cleared} cached credential${cleared === 1 ? '' : 's'}${signInText}.\n`);
  return 0;
}

/** The start URL an SSO profile signs in at (through its chain's root); undefined for others. */
export async function ssoStartUrl(ctx: Context, profile: string): Promise<string | undefined> {
  const config = await ctx.config();
  if (!config.has(profile)) return undefined;
  let root = config.load(profile);
  while (root.source) root = root.source;
  return root.sso?.startUrl;
}
