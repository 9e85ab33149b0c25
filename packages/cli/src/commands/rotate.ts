import { setTimeout as sleep } from 'node:timers/promises';
import {
  SdkIamGateway,
  VaultError,
  chainOf,
  mfaTokenSource,
  resolveIamTarget,
  resolveStsTarget,
  rotateStoredKey,
  toStsError,
  type Credentials,
} from '@vault/core';
import type { Context } from '../context.js';
import { mfaPrompt } from '../prompt/mfaPrompt.js';
import { profilesUsingKey } from '../profilesUsingKey.js';
import { mfaTokenOption } from './options.js';
import { profileOrAwsProfile } from './profileArgument.js';

export interface RotateInput {
  profile?: string;
  /** commander's `-n, --no-session` gives `session: false`. */
  session?: boolean;
  mfaToken?: string;
}

/** An MFA session for the IAM calls needs only to outlive them: GetSessionToken's minimum, 15 min. */
const ROTATE_SESSION_SECONDS = 900;
/** A cached MFA session (in the credential cache) is reused for the IAM calls while this much of it is left. */
const CACHED_SESSION_MIN_MS = 5 * 60_000;

/**
 * `vault rotate`: replaces the profile's stored long-term key (see rotateStoredKey in core). The
 * IAM calls are signed by an MFA session from the old key when the profile chain has an MFA device
 * (a cached one when it has enough life, else a new one with a code), or by the key itself with -n.
 */
export async function rotate(input: RotateInput, ctx: Context): Promise<number> {
  const profileName = profileOrAwsProfile(input.profile, ctx.env, 'rotate');
  const mfaToken = mfaTokenOption(input.mfaToken);
  const config = await ctx.config();
  const profile = config.load(profileName);
  const chain = chainOf(profile);
  const root = chain[0]!;
  if (root.credentialProcess) {
    throw new VaultError('KEY_NOT_FOUND', `profile ${profileName} gets its credentials from credential_process: there is no stored key to rotate`, {
      hint: 'rotate the key where that process keeps it',
    });
  }
  const keyring = await ctx.credentialKeyring();
  let keyOwner: string | undefined;
  let oldKey: Credentials | undefined;
  for (const name of root.keyProfileNames) {
    oldKey = await keyring.get(name);
    if (oldKey) {
      keyOwner = name;
      break;
    }
  }
  if (!oldKey || keyOwner === undefined) {
    throw new VaultError('KEY_NOT_FOUND', `profile ${root.name}${root === profile ? '' : ` (the key of ${profileName})`} has no stored key to rotate`, {
      hint: `store one with \`vault add ${root.name}\` first`,
    });
  }
  if (oldKey.sessionToken) {
    throw new VaultError('KEY_NOT_FOUND', `the credentials stored for profile ${keyOwner} are temporary: there is no long-term key to rotate`, {
      hint: `store a long-term key with \`vault add ${keyOwner}\``,
    });
  }
  const stsTarget = resolveStsTarget(root, ctx.env);
  const cache = await ctx.credentialCache();
  const mfaSerial = chain.find((p) => p.mfaSerial !== undefined)?.mfaSerial;

  let caller: Credentials = oldKey;
  if (input.session !== false && mfaSerial !== undefined) {
    const cached = await cache.find('sts.GetSessionToken', keyOwner, mfaSerial, ctx.clock.now(), CACHED_SESSION_MIN_MS);
    if (cached) caller = cached;
    else {
      const code = await mfaTokenSource({ explicit: mfaToken, mfaProcess: profile.mfaProcess ?? root.mfaProcess, prompt: mfaPrompt(ctx.promptDriver(), ctx.ask), env: ctx.env })({
        serial: mfaSerial,
        profile: profileName,
      });
      try {
        caller = await ctx.sts().getSessionToken(oldKey, stsTarget, { durationSeconds: ROTATE_SESSION_SECONDS, serialNumber: mfaSerial, tokenCode: code });
      } catch (error) {
        throw toStsError(error, { operation: 'GetSessionToken', profile: profileName, endpoint: stsTarget.endpoint, keyOwner });
      }
    }
  }

  await rotateStoredKey(
    {
      profile: profileName,
      keyOwner,
      oldKey,
      caller,
      iamTarget: resolveIamTarget(root, ctx.env),
      stsTarget,
      profilesUsingKey: profilesUsingKey(config, keyOwner),
    },
    {
      iam: new SdkIamGateway(),
      sts: ctx.sts(),
      credentials: keyring,
      cache,
      clock: ctx.clock,
      sleep: (ms) => sleep(ms),
      say: (line) => ctx.stderr.write(`${line}\n`),
      logger: ctx.logger,
    },
  );
  ctx.stderr.write(`Rotated the key stored for profile ${keyOwner}\n`);
  return 0;
}
