import { VaultError } from '@vault/core';
import type { Context } from '../context.js';

export interface RotateInput {
  profile?: string;
  session?: boolean;
  mfaToken?: string;
}

export async function rotate(_input: RotateInput, _ctx: Context): Promise<number> {
  throw new VaultError('USAGE', 'vault rotate is not built yet');
}
