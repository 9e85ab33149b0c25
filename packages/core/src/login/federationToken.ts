import type { Credentials, TemporaryCredentials } from '../credentials.js';
import { VaultError } from '../errors.js';
import { quietly, stsClientConfig } from '../sts/sdkStsGateway.js';
import type { StsTarget } from '../sts/stsGateway.js';
import { noteStsEndpoint, toStsError } from '../sts/stsErrors.js';

/**
 * The session policy sent with GetFederationToken. A federated user gets the intersection of the
 * IAM user's own policies and this one, so "allow everything" means "everything the user may do"
 * (aws-vault sends the same).
 */
export const ALLOW_ALL_POLICY = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });

/** GetFederationToken's Name: 2–32 characters (STS API reference), so longer user names are cut. */
export const FEDERATION_NAME_MAX = 32;

/** aws-vault's default AWS_FEDERATION_TOKEN_TTL: 12 h (STS allows 15 min to 36 h). */
export const DEFAULT_FEDERATION_TOKEN_SECONDS = 12 * 3_600;

export function federationName(userName: string): string {
  return userName.slice(0, FEDERATION_NAME_MAX);
}

/** The IAM user name in a caller ARN (`arn:aws:iam::ACCOUNT:user/PATH/NAME`); undefined for any other principal. */
export function userNameOfArn(arn: string): string | undefined {
  const match = /^arn:[a-z-]+:iam::\d{12}:user\/(?:.*\/)?([^/]+)$/.exec(arn);
  return match?.[1];
}

/**
 * GetFederationToken with a long-term key: the console refuses GetSessionToken's credentials,
 * and a long-term key must never go into a sign-in URL. @aws-sdk/client-sts is loaded here only.
 */
export async function getFederationToken(
  key: Credentials,
  target: StsTarget,
  input: { name: string; durationSeconds: number; profile: string; keyOwner: string },
): Promise<TemporaryCredentials> {
  const sdk = await import('@aws-sdk/client-sts');
  const client = quietly(() => new sdk.STSClient({
    ...stsClientConfig(target),
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    maxAttempts: 3,
    requestHandler: { requestTimeout: 10_000, throwOnRequestTimeout: true },
  }));
  try {
    const out = await client.send(new sdk.GetFederationTokenCommand({ Name: input.name, DurationSeconds: input.durationSeconds, Policy: ALLOW_ALL_POLICY }));
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      throw Object.assign(new Error('STS returned a reply without complete credentials'), { name: 'MalformedResponse' });
    }
    return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
  } catch (error) {
    if (error instanceof VaultError) throw error;
    throw toStsError(target.endpoint ? noteStsEndpoint(error, target.endpoint) : error, {
      operation: 'GetFederationToken',
      profile: input.profile,
      endpoint: target.endpoint,
      keyOwner: input.keyOwner,
    });
  } finally {
    client.destroy();
  }
}
