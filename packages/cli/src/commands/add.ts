import { ACCESS_KEY_ID, VaultError, addProfileSection, profileHeader } from '@vault/core';
import type { Context } from '../context.js';
import { profilesUsingKey } from '../profilesUsingKey.js';

export interface AddInput {
  profile: string;
  env?: boolean;
  /** aws-vault's --add-config (default on); commander's `--no-add-config` gives false. */
  addConfig?: boolean;
}

/** AWS secret keys are 40 base64-ish characters; allow some slack but refuse what cannot be one. */
const SECRET_KEY = /^[A-Za-z0-9/+=]{16,128}$/;

export async function add(input: AddInput, ctx: Context): Promise<number> {
  let accessKeyId: string;
  let secretAccessKey: string;
  if (input.env) {
    accessKeyId = ctx.env.AWS_ACCESS_KEY_ID ?? '';
    secretAccessKey = ctx.env.AWS_SECRET_ACCESS_KEY ?? '';
    if (!accessKeyId || !secretAccessKey) {
      throw new VaultError('USAGE', '--env needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to be set', {
        hint: 'export both variables, or run `vault add PROFILE` to be asked for them',
      });
    }
  } else {
    accessKeyId = await ctx.ask('Enter Access Key ID: ', { preferStdin: true });
    secretAccessKey = await ctx.ask('Enter Secret Access Key: ', { hidden: true, preferStdin: true });
  }
  // Never echo what was typed: a secret pasted into the wrong field must not reach the screen or a log.
  if (!ACCESS_KEY_ID.test(accessKeyId)) {
    throw new VaultError('USAGE', 'the access key id is not an AWS access key id (16–128 upper-case letters and digits, e.g. AKIA…)', {
      hint: 'copy the Access key ID from the IAM console and try again',
    });
  }
  if (!SECRET_KEY.test(secretAccessKey)) {
    throw new VaultError('USAGE', 'the secret access key is not an AWS secret key (40 characters of letters, digits, / + =)', {
      hint: 'copy the Secret access key from the IAM console and try again',
    });
  }
  const credentials = await ctx.credentialKeyring();
  await credentials.set(input.profile, { accessKeyId, secretAccessKey });
  // Credentials cached from the old key belong to it: drop them so the next command uses the new one.
  const cache = await ctx.credentialCache();
  const config = await ctx.config();
  await cache.clear(profilesUsingKey(config, input.profile));
  ctx.stderr.write(`Added credentials to profile "${input.profile}" in vault (${credentials.keyring.backend} backend)\n`);
  if (!config.has(input.profile)) {
    if (input.addConfig === false) {
      ctx.stderr.write(`note: profile "${input.profile}" is not in ${config.path}; add ${profileHeader(input.profile)} to set its region and MFA device\n`);
      return 0;
    }
    // As aws-vault's --add-config: an empty section, so the AWS CLI and SDKs know the profile.
    try {
      const written = await addProfileSection(config.path, input.profile);
      if (written.added) ctx.stderr.write(`Added ${profileHeader(input.profile)} to ${written.path}\n`);
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
      throw new VaultError(error.code, `the key for profile ${input.profile} is stored, but ${error.message}`, { hint: error.hint ?? '', cause: error.cause });
    }
  }
  return 0;
}
