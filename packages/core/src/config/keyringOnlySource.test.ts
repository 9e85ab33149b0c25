import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import type { Credentials } from '../credentials.js';
import { VaultError } from '../errors.js';
import { CredentialKeyring } from '../keyring/credentialKeyring.js';
import { MemoryKeyring } from '../keyring/memoryKeyring.js';
import { CredentialCache } from '../keyring/credentialCache.js';
import { CredentialChain } from '../chain/credentialChain.js';
import type { AssumeRoleInput, StsGateway } from '../sts/stsGateway.js';
import { parseConfigFile } from './configFile.js';
import { ConfigLoader } from './configLoader.js';
import { describeChain } from './profileConfig.js';

/** `source_profile = keys-only`, where keys-only has a stored key (`vault add keys-only`) and no section. */
const CONFIG = '[default]\nregion = eu-west-1\n[profile role]\nsource_profile = keys-only\nrole_arn = arn:aws:iam::111111111111:role/r\n';

class RecordingSts implements StsGateway {
  signedWith: string[] = [];
  async getSessionToken(): Promise<never> {
    throw new Error('not expected: no MFA in this chain');
  }
  async assumeRole(c: Credentials, _target: unknown, input: AssumeRoleInput) {
    this.signedWith.push(c.accessKeyId);
    return { accessKeyId: 'ASIAROLE000000000001', secretAccessKey: 's', sessionToken: 't', expiration: new Date(Date.UTC(2026, 0, 1, 10)), assumedRoleArn: input.roleArn };
  }
  async getCallerIdentity() {
    return { account: '', arn: '', userId: '' };
  }
}

const load = (name: string) => new ConfigLoader(parseConfigFile(CONFIG, '/home/u/.aws/config'), { env: {} }).load(name);

async function chainFor(keyring: MemoryKeyring, sts: StsGateway) {
  return new CredentialChain(load('role'), {
    credentials: new CredentialKeyring(keyring),
    cache: new CredentialCache(keyring),
    sts,
    clock: new ManualClock(Date.UTC(2026, 0, 1, 9)),
    env: {},
  });
}

describe('a source_profile that has a stored key and no section in the config', () => {
  it('resolves as an undeclared source (the [default] region still applies to it)', () => {
    const profile = load('role');
    expect(describeChain(profile)).toBe('keys-only → role');
    expect(profile.source).toMatchObject({ name: 'keys-only', declared: false, keyProfileNames: ['keys-only'], region: 'eu-west-1' });
  });

  it("assumes the role with that stored key, as aws-vault does", async () => {
    const keyring = new MemoryKeyring();
    await new CredentialKeyring(keyring).set('keys-only', { accessKeyId: 'AKIAKEYSONLY00000001', secretAccessKey: 'k' });
    const sts = new RecordingSts();
    const credentials = await (await chainFor(keyring, sts)).credentials();
    expect(sts.signedWith).toEqual(['AKIAKEYSONLY00000001']);
    expect(credentials.accessKeyId).toBe('ASIAROLE000000000001');
  });

  it('without a stored key either: one line naming the source, the profile that wants it and the fix', async () => {
    const sts = new RecordingSts();
    const error = await (await chainFor(new MemoryKeyring(), sts)).credentials().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VaultError);
    expect((error as VaultError).code).toBe('PROFILE_NOT_FOUND');
    expect((error as VaultError).message).toBe('profile keys-only (source_profile of role) is not in the AWS config file and has no stored key (chain: keys-only → role)');
    expect((error as VaultError).hint).toMatch(/vault add keys-only/);
    expect(sts.signedWith).toEqual([]);
  });
});
