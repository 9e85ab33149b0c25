import { CredentialKeyring, VaultError, isVaultError, normalizeBackendName, type Credentials } from '@vault/core';
import type { Context } from '../context.js';

export interface MigrateBackendInput {
  from: string;
  to: string;
  /** Only these profiles (repeatable `--profile`); every stored key when absent. */
  profile?: string[];
  dryRun?: boolean;
  overwrite?: boolean;
  deleteSource?: boolean;
}

type Outcome = 'copied' | 'same' | 'kept';

/**
 * `vault migrate-backend`: copies long-term keys (not cached credentials, which are re-made on
 * the next command) from one keyring backend to another. Every copy is read back from the target
 * and compared before anything is deleted; the source loses a key only with --delete-source, only
 * once every copy checked out, and only when the target holds that very key. A key already in the
 * target is left alone unless --overwrite.
 */
export async function migrateBackend(input: MigrateBackendInput, ctx: Context): Promise<number> {
  const from = normalizeBackendName(input.from, '--from');
  const to = normalizeBackendName(input.to, '--to');
  if (from === to) {
    throw new VaultError('USAGE', `--from and --to are both the ${from} backend`, { hint: 'name two different backends, e.g. --from file --to pass' });
  }
  const source = new CredentialKeyring(await ctx.openBackend(from));
  const target = new CredentialKeyring(await opened(ctx, to));
  const stored = await source.profiles();
  const wanted = input.profile && input.profile.length > 0 ? [...new Set(input.profile)] : stored;
  const missing = wanted.filter((profile) => !stored.includes(profile));
  if (missing.length > 0) {
    throw new VaultError('KEY_NOT_FOUND', `the ${from} backend has no stored key for ${missing.join(', ')}`, {
      hint: `see \`vault --backend ${from} list --credentials\` for the profiles it holds`,
    });
  }
  if (wanted.length === 0) {
    ctx.stderr.write(`vault: the ${from} backend holds no stored keys; nothing to copy\n`);
    return 0;
  }
  // Fail on a locked or unreadable target before anything is written to it.
  const inTarget = new Set(await target.profiles().catch((error: unknown) => Promise.reject(targetError(to, error))));
  const probe = [...inTarget][0];
  if (probe !== undefined) await target.get(probe).catch((error: unknown) => Promise.reject(targetError(to, error)));

  const say = (line: string) => ctx.stderr.write(`${line}\n`);
  const arrow = `${from} → ${to}`;
  const outcomes = new Map<string, Outcome>();
  for (const profile of wanted) {
    const credentials = (await source.get(profile))!;
    const present = inTarget.has(profile);
    if (present && !input.overwrite) {
      const there = await target.get(profile).catch(() => undefined);
      const same = there !== undefined && sameKey(there, credentials);
      outcomes.set(profile, same ? 'same' : 'kept');
      say(same ? `${profile}: already in ${to} (the same key)` : `${profile}: left alone, ${to} holds a different key (--overwrite replaces it)`);
      continue;
    }
    if (input.dryRun) {
      say(`${profile}: would copy (${arrow})${present ? ', replacing the key there' : ''}`);
      continue;
    }
    try {
      await target.set(profile, credentials);
    } catch (error) {
      throw stopped(profile, to, error, outcomes);
    }
    const back = await target.get(profile).catch((error: unknown) => error);
    if (back instanceof Error || back === undefined || !sameKey(back as Credentials, credentials)) {
      // Do not leave a copy nobody can read where there was nothing before.
      if (!present) await target.remove(profile).catch(() => undefined);
      throw new VaultError('KEYRING_UNAVAILABLE', `the key for ${profile} did not read back from ${to} as written${isVaultError(back) ? ` (${back.message})` : ''}; nothing was deleted from ${from}`, {
        hint: `fix the ${to} backend (see the message) and run migrate-backend again`,
      });
    }
    outcomes.set(profile, 'copied');
    say(`${profile}: copied (${arrow}), read back from ${to}`);
  }
  if (input.dryRun) {
    say(`dry run: nothing was written to ${to}${input.deleteSource ? ` or deleted from ${from}` : ''}`);
    return 0;
  }
  if (input.deleteSource) {
    for (const [profile, outcome] of outcomes) {
      if (outcome === 'kept') {
        say(`${profile}: kept in ${from} (${to} holds a different key)`);
        continue;
      }
      await source.remove(profile);
      say(`${profile}: deleted from ${from}`);
    }
  }
  const copied = [...outcomes.values()].filter((o) => o === 'copied').length;
  say(`${copied} key(s) copied to ${to}${input.deleteSource ? '' : `; the ${from} backend still holds them (--delete-source removes them once copied)`}`);
  return 0;
}

async function opened(ctx: Context, to: string) {
  try {
    return await ctx.openBackend(to);
  } catch (error) {
    throw targetError(to, error);
  }
}

function sameKey(a: Credentials, b: Credentials): boolean {
  return a.accessKeyId === b.accessKeyId && a.secretAccessKey === b.secretAccessKey && (a.sessionToken ?? '') === (b.sessionToken ?? '');
}

/** A target that cannot be opened, listed or read: nothing has been copied or deleted yet. */
function targetError(to: string, error: unknown): unknown {
  if (!isVaultError(error)) return error;
  return new VaultError(error.code, `cannot use the ${to} backend as the target: ${error.message}; nothing was copied or deleted`, {
    ...(error.hint ? { hint: error.hint } : {}),
    cause: error.cause,
  });
}

function stopped(profile: string, to: string, error: unknown, outcomes: Map<string, Outcome>): unknown {
  if (!isVaultError(error)) return error;
  const done = [...outcomes].filter(([, o]) => o === 'copied').map(([p]) => p);
  return new VaultError(error.code, `could not copy ${profile} to ${to}: ${error.message}; nothing was deleted${done.length ? ` (already copied: ${done.join(', ')})` : ''}`, {
    ...(error.hint ? { hint: error.hint } : {}),
    cause: error.cause,
  });
}
