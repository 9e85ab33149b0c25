import type { Credentials, TemporaryCredentials } from '../../credentials.js';
import type { GetSessionTokenInput, StsGateway, StsTarget } from '../../sts/stsGateway.js';
import { toStsError } from '../../sts/stsErrors.js';

/** One GetSessionToken call (with the MFA code when given), errors turned into one-line messages. */
export async function fromSessionToken(
  sts: StsGateway,
  key: Credentials,
  target: StsTarget,
  input: GetSessionTokenInput,
  profile: string,
  keyOwner?: string,
): Promise<TemporaryCredentials> {
  try {
    return await sts.getSessionToken(key, target, input);
  } catch (error) {
    throw toStsError(error, { operation: 'GetSessionToken', profile, endpoint: target.endpoint, keyOwner });
  }
}
