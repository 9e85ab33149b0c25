import { formatDuration, isSsoTokenKey, parseCacheKey, SSO_TOKEN_PREFIX } from '@vault/core';
import type { Context } from '../context.js';

export interface ListInput {
  profiles?: boolean;
  credentials?: boolean;
  /** aws-vault's `--sessions`: only the cached credentials. */
  sessions?: boolean;
}

export async function list(input: ListInput, ctx: Context): Promise<number> {
  const config = await ctx.config();
  const keyring = await ctx.keyring();
  const keys = await keyring.keys();
  const cached = keys.map(parseCacheKey).filter((k) => k !== undefined);
  const stored = new Set(keys.filter((k) => parseCacheKey(k) === undefined && !k.startsWith('sts.') && !isSsoTokenKey(k)));
  // IAM Identity Center sign-ins (aws-vault's `oidc:<start URL>` items): shown by name, never read.
  const signIns = new Set(keys.filter(isSsoTokenKey));
  const signInOf = (name: string): string | undefined => {
    try {
      let root = config.load(name);
      while (root.source) root = root.source;
      const key = root.sso ? `${SSO_TOKEN_PREFIX}${root.sso.startUrl}` : undefined;
      return key !== undefined && signIns.has(key) ? key : undefined;
    } catch {
      return undefined; // a broken profile still gets its row; `vault exec` says what is wrong
    }
  };
  const now = ctx.clock.now();
  const names = [...new Set([...config.profileNames(), ...stored])];

  if (input.profiles) return print(ctx, config.profileNames());
  if (input.credentials) return print(ctx, [...stored].sort());
  if (input.sessions) {
    return print(ctx, [
      ...cached.filter((s) => s.expiration.getTime() > now).map((s) => `${s.type}:${s.profile}:${formatDuration(s.expiration.getTime() - now)}`),
      ...[...signIns].sort(),
    ]);
  }
  const rows = names.map((name) => {
    const live = cached.filter((s) => s.profile === name && s.expiration.getTime() > now);
    const labels = live.map((s) => `${s.type}:${formatDuration(s.expiration.getTime() - now)}`);
    const signIn = config.has(name) ? signInOf(name) : undefined;
    if (signIn) labels.push(signIn);
    const sessionText = labels.length ? labels.join(', ') : '-';
    return [name, stored.has(name) ? name : '-', sessionText];
  });
  const header = [['Profile', 'Credentials', 'Cached'], ['=======', '===========', '======']];
  const all = [...header, ...rows];
  const widths = [0, 1].map((i) => Math.max(...all.map((r) => r[i]!.length)) + 2);
  for (const row of all) ctx.stdout.write(`${row[0]!.padEnd(widths[0]!)}${row[1]!.padEnd(widths[1]!)}${row[2]}\n`);
  return 0;
}

function print(ctx: Context, lines: string[]): number {
  for (const line of lines) ctx.stdout.write(`${line}\n`);
  return 0;
}
