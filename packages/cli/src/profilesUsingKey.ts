import { chainOf, type ConfigLoader } from '@vault/core';

/**
 * Profiles whose cached credentials come from `keyOwner`'s stored key: the owner itself and every
 * declared profile whose chain starts at it. Replacing or removing the key must drop all of them.
 */
export function profilesUsingKey(config: ConfigLoader, keyOwner: string): Set<string> {
  const names = new Set([keyOwner]);
  for (const name of config.profileNames()) {
    try {
      const root = chainOf(config.load(name))[0]!;
      if (root.keyProfileNames.includes(keyOwner)) names.add(name);
    } catch {
      // A profile that does not resolve has no sessions of its own to drop.
    }
  }
  return names;
}
