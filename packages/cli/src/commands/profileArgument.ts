import { VaultError } from '@vault/core';
import type { Context } from '../context.js';

/** The profile a command was given, else AWS_PROFILE (as aws-vault reads it), else a usage line. */
export function profileFromInput(given: string | undefined, ctx: Context, command: string): string {
  const profile = given || ctx.env.AWS_PROFILE;
  if (!profile) {
    throw new VaultError('USAGE', `vault ${command} needs a profile`, { hint: `run \`vault ${command} PROFILE\`, or set AWS_PROFILE` });
  }
  return profile;
}
