import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import type { Credentials } from '../credentials.js';
import { VaultError } from '../errors.js';
import { CredentialKeyring } from '../keyring/credentialKeyring.js';
import { MemoryKeyring } from '../keyring/memoryKeyring.js';
import { CredentialCache } from '../keyring/credentialCache.js';
import type { StsGateway } from '../sts/stsGateway.js';
import type { AccessKey, IamGateway } from './iamGateway.js';
import { rotateStoredKey, type RotateDeps } from './rotateKey.js';

const OLD: Credentials = { accessKeyId: 'AKIAOLDOLDOLDOLD0001', secretAccessKey: 'old-secret-old-secret-old-secret-0001' };
const NEW: AccessKey = { accessKeyId: 'AKIANEWNEWNEWNEW0002', secretAccessKey: 'new-secret-new-secret-new-secret-0002' };
const awsError = (name: string, message: string, status = 400) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });

/** A tiny IAM + STS: which keys exist, and which STS accepts. */
function fakeAws() {
  const keys = new Set([OLD.accessKeyId]);
  const accepted = new Set([OLD.accessKeyId]);
  const failures: Partial<Record<'getUser' | 'createAccessKey' | 'deleteOld' | 'deleteNew', Error>> = {};
  let stsRefusals = 0;
  const iam: IamGateway = {
    async getUser() {
      if (failures.getUser) throw failures.getUser;
      return { userName: 'alice', arn: 'arn:aws:iam::111111111111:user/alice' };
    },
    async createAccessKey() {
      if (failures.createAccessKey) throw failures.createAccessKey;
      keys.add(NEW.accessKeyId);
      return NEW;
    },
    async deleteAccessKey(_c, _t, _u, id) {
      const failure = id === OLD.accessKeyId ? failures.deleteOld : failures.deleteNew;
      if (failure) throw failure;
      keys.delete(id);
      accepted.delete(id);
    },
  };
  const sts: Pick<StsGateway, 'getCallerIdentity'> = {
    async getCallerIdentity(credentials) {
      // IAM's eventual consistency: the new key is refused for a while.
      if (credentials.accessKeyId === NEW.accessKeyId && stsRefusals > 0) {
        stsRefusals -= 1;
        throw awsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
      }
      if (!keys.has(credentials.accessKeyId)) throw awsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
      return { account: '111111111111', arn: 'arn:aws:iam::111111111111:user/alice', userId: 'AIDA' };
    },
  };
  return { keys, iam, sts: sts as StsGateway, failures, refuse: (n: number) => (stsRefusals = n) };
}

async function setUp(options: { failStore?: 'new' | 'old' | 'both'; failClear?: boolean } = {}) {
  const aws = fakeAws();
  const memory = new MemoryKeyring();
  const credentials = new CredentialKeyring(memory);
  await credentials.set('work', OLD);
  const cache = new CredentialCache(memory);
  await cache.store('sts.GetSessionToken', 'work', '', { ...NEW, accessKeyId: 'ASIASESSION', sessionToken: 'token-token-token', expiration: new Date(Date.UTC(2026, 0, 2)) });
  const originalSet = credentials.set.bind(credentials);
  credentials.set = async (profile, key) => {
    const failing = options.failStore === 'both' || (options.failStore === 'new' && key.accessKeyId === NEW.accessKeyId) || (options.failStore === 'old' && key.accessKeyId === OLD.accessKeyId);
    if (failing) throw new VaultError('KEYRING_WRITE', 'could not write the keyring item work');
    return originalSet(profile, key);
  };
  if (options.failClear) cache.clear = async () => Promise.reject(new VaultError('KEYRING_WRITE', 'could not remove cached credentials'));
  const clock = new ManualClock();
  const slept: number[] = [];
  const said: string[] = [];
  const deps: RotateDeps = {
    iam: aws.iam,
    sts: aws.sts,
    credentials,
    cache,
    clock,
    sleep: async (ms) => {
      slept.push(ms);
      clock.advance(ms);
    },
    say: (line) => said.push(line),
  };
  const request = {
    profile: 'work',
    keyOwner: 'work',
    oldKey: OLD,
    caller: OLD,
    iamTarget: { region: 'us-east-1' },
    stsTarget: { region: 'us-east-1', useFipsEndpoint: false, useDualstackEndpoint: false, useGlobalEndpoint: false },
    profilesUsingKey: new Set(['work']),
  };
  const stored = async () => (await credentials.keyring.get('work')) && (await new CredentialKeyring(memory).get('work'))!.accessKeyId;
  return { aws, deps, request, slept, said, stored, cache };
}

async function rotateError(run: Promise<unknown>): Promise<VaultError> {
  const error = await run.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(VaultError);
  expect((error as VaultError).code).toBe('ROTATE_FAILED');
  return error as VaultError;
}

describe('rotateStoredKey: whatever step fails, exactly one working key is stored', () => {
  it('all steps succeed: the new key is stored, the credentials cached from the old one dropped, the old key deleted', async () => {
    const { aws, deps, request, stored, cache } = await setUp();
    await expect(rotateStoredKey(request, deps)).resolves.toEqual({ userName: 'alice', newAccessKeyId: NEW.accessKeyId, oldAccessKeyId: OLD.accessKeyId });
    expect(await stored()).toBe(NEW.accessKeyId);
    expect([...aws.keys]).toEqual([NEW.accessKeyId]);
    expect(await cache.list()).toEqual([]);
  });

  it('waits with a bounded backoff until STS accepts the new key (injected clock and sleep)', async () => {
    const { aws, deps, request, slept, stored } = await setUp();
    aws.refuse(4);
    await rotateStoredKey(request, deps);
    expect(slept).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(await stored()).toBe(NEW.accessKeyId);
  });

  it('STS never accepts the new key within 60 s: the old key is put back and the new one deleted', async () => {
    const { aws, deps, request, slept, stored } = await setUp();
    aws.refuse(1_000);
    const error = await rotateError(rotateStoredKey(request, deps));
    expect(slept.reduce((a, b) => a + b, 0)).toBe(60_000);
    expect(error.toLine()).toBe(
      'STS did not accept the new key ****0002 within 60 s (InvalidClientTokenId: The security token included in the request is invalid.); put the old key back in the keyring (it still works) and deleted the new one; run `vault rotate work` again in a minute',
    );
    expect(await stored()).toBe(OLD.accessKeyId);
    expect([...aws.keys]).toEqual([OLD.accessKeyId]);
  });

  it('STS never accepts it and the old key cannot be put back: the new key stays stored, the old one is kept at AWS', async () => {
    const { aws, deps, request, stored } = await setUp({ failStore: 'old' });
    aws.refuse(1_000);
    const error = await rotateError(rotateStoredKey(request, deps));
    expect(error.message).toMatch(/the old key could not be put back \(could not write the keyring item work\); the new key stays stored and the old key was not deleted$/);
    expect(await stored()).toBe(NEW.accessKeyId);
    expect([...aws.keys].sort()).toEqual([NEW.accessKeyId, OLD.accessKeyId].sort());
  });

  it('storing the new key fails and deleting it fails too: the line gives the delete command; the old key stays stored', async () => {
    const { aws, deps, request, stored } = await setUp({ failStore: 'new' });
    aws.failures.deleteNew = awsError('AccessDenied', 'User: arn:aws:iam::111111111111:user/alice is not authorized to perform: iam:DeleteAccessKey', 403);
    const error = await rotateError(rotateStoredKey(request, deps));
    expect(error.hint).toBe('delete the new key with `aws iam delete-access-key --user-name alice --access-key-id AKIANEWNEWNEWNEW0002`, fix the keyring, and run `vault rotate work` again');
    expect(await stored()).toBe(OLD.accessKeyId);
  });

  it('dropping the cached credentials fails: a note, and the rotation still completes', async () => {
    const { aws, deps, request, said, stored } = await setUp({ failClear: true });
    await rotateStoredKey(request, deps);
    expect(said).toContain('vault: note: could not drop the credentials cached from the old key (could not remove cached credentials); run `vault clear work`');
    expect(await stored()).toBe(NEW.accessKeyId);
    expect([...aws.keys]).toEqual([NEW.accessKeyId]);
  });

  it('GetUser fails without naming the user, or CreateAccessKey fails: nothing changes', async () => {
    for (const step of ['getUser', 'createAccessKey'] as const) {
      const { aws, deps, request, stored } = await setUp();
      aws.failures[step] = awsError('ServiceFailure', 'Service failure', 500);
      await rotateError(rotateStoredKey(request, deps));
      expect(await stored()).toBe(OLD.accessKeyId);
      expect([...aws.keys]).toEqual([OLD.accessKeyId]);
    }
  });

  it('GetUser denied: the user name is read from the AccessDenied message', async () => {
    const { aws, deps, request } = await setUp();
    aws.failures.getUser = awsError('AccessDenied', 'User: arn:aws:iam::111111111111:user/team/bob is not authorized to perform: iam:GetUser on resource: user bob', 403);
    await expect(rotateStoredKey(request, deps)).resolves.toMatchObject({ userName: 'bob' });
  });
});
