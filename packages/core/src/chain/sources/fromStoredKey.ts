import { chainOf, describeChain, type ProfileConfig } from '../../config/profileConfig.js';
import type { Credentials } from '../../credentials.js';
import { VaultError } from '../../errors.js';
import type { CredentialKeyring } from '../../keyring/credentialKeyring.js';

export interface StoredKey {
  /** The profile whose stored key this is (the profile itself or one it includes). */
  owner: string;
  credentials: Credentials;
}

/** The long-term key for the root of a chain: its own, or that of a profile it includes. */
export async function fromStoredKey(root: ProfileConfig, keyring: CredentialKeyring, target: ProfileConfig): Promise<StoredKey> {
  for (const name of root.keyProfileNames) {
    const credentials = await keyring.get(name);
    if (credentials) return { owner: name, credentials };
  }
  if (!root.declared) {
    // A source_profile with no section is accepted at load time (its key may be stored); it is not.
    const wanted = root === target ? '' : ` (source_profile of ${chainOf(target)[1]!.name})`;
    const chain = root === target ? '' : ` (chain: ${describeChain(target)})`;
    throw new VaultError('PROFILE_NOT_FOUND', `profile ${root.name}${wanted} is not in the AWS config file and has no stored key${chain}`, {
      hint: `store a key with \`vault add ${root.name}\` or add [profile ${root.name}] to the config`,
    });
  }
  const via = target === root ? '' : ` (needed by ${target.name})`;
  throw new VaultError('PROFILE_NO_CREDENTIALS', `profile ${root.name}${via} has no stored key and no source_profile`, {
    hint: `store its key with \`vault add ${root.name}\`, or set source_profile`,
  });
}
