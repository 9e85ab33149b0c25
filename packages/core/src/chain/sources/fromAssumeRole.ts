import type { AssumedRoleCredentials, Credentials } from '../../credentials.js';
import type { AssumeRoleInput, StsGateway, StsTarget } from '../../sts/stsGateway.js';
import { toStsError } from '../../sts/stsErrors.js';

/** One AssumeRole call, errors turned into one-line messages naming the role and profile. */
export async function fromAssumeRole(
  sts: StsGateway,
  credentials: Credentials,
  target: StsTarget,
  input: AssumeRoleInput,
  profile: string,
  keyOwner?: string,
): Promise<AssumedRoleCredentials> {
  try {
    return await sts.assumeRole(credentials, target, input);
  } catch (error) {
    throw toStsError(error, { operation: 'AssumeRole', profile, roleArn: input.roleArn, endpoint: target.endpoint, keyOwner });
  }
}
