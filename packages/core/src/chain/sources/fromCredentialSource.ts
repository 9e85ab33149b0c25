import type { CredentialSource } from '../../config/profileConfig.js';
import type { Credentials } from '../../credentials.js';
import { VaultError } from '../../errors.js';

type Provider = () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }>;

/** The two metadata providers, as @aws-sdk/credential-providers exports them; tests pass fakes. */
export interface MetadataProviders {
  fromContainer(options: {
    awsContainerCredentialsFullUri?: string;
    awsContainerCredentialsRelativeUri?: string;
    awsContainerAuthorizationToken?: string;
    awsContainerAuthorizationTokenFile?: string;
    timeout: number;
    maxRetries: number;
  }): Provider;
  fromInstanceMetadata(options: { timeout: number; maxRetries: number }): Provider;
}

/**
 * Loaded on the first credential_source that needs a metadata service only: a cached `exec` never
 * pays for the SDK. fromHttp rather than fromContainerMetadata because it takes the container
 * variables as arguments, so they come from the chain's environment (the daemon's, a test's)
 * instead of this process's; it also reads the authorization token file afresh at each call, as EKS
 * Pod Identity rotates it.
 */
async function sdkProviders(): Promise<MetadataProviders> {
  const mod = await import('@aws-sdk/credential-providers');
  return {
    fromContainer: (options) => mod.fromHttp(options),
    fromInstanceMetadata: (options) => mod.fromInstanceMetadata(options),
  };
}

/** The SDKs' own metadata timeouts are 1 s with no retry; a loaded CI runner gets a little more. */
const METADATA_TIMEOUT_MS = 2_000;
const METADATA_MAX_RETRIES = 2;

export interface CredentialSourceOptions {
  providers?: () => Promise<MetadataProviders>;
}

/**
 * The credentials the AWS CLI's `credential_source` names for a role profile: the environment's
 * keys, the EC2 instance's role (IMDS), or the ECS / EKS container endpoint. They sign the
 * profile's AssumeRole; they are not cached by vault (each source is local and cheap to ask).
 */
export async function fromCredentialSource(
  source: CredentialSource,
  profile: string,
  env: NodeJS.ProcessEnv,
  options: CredentialSourceOptions = {},
): Promise<Credentials> {
  const where = `profile ${profile}: credential_source = ${source}`;
  if (source === 'Environment') {
    const accessKeyId = env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw new VaultError('PROFILE_NO_CREDENTIALS', `${where}, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set`, {
        hint: 'export both (and AWS_SESSION_TOKEN for temporary credentials), or use another credential_source',
      });
    }
    // botocore also takes the older AWS_SECURITY_TOKEN.
    const sessionToken = env.AWS_SESSION_TOKEN || env.AWS_SECURITY_TOKEN || undefined;
    return { accessKeyId, secretAccessKey, sessionToken };
  }
  const container = {
    awsContainerCredentialsFullUri: env.AWS_CONTAINER_CREDENTIALS_FULL_URI || undefined,
    awsContainerCredentialsRelativeUri: env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || undefined,
    awsContainerAuthorizationToken: env.AWS_CONTAINER_AUTHORIZATION_TOKEN || undefined,
    awsContainerAuthorizationTokenFile: env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE || undefined,
  };
  if (source === 'EcsContainer' && !container.awsContainerCredentialsFullUri && !container.awsContainerCredentialsRelativeUri) {
    throw new VaultError(
      'PROFILE_NO_CREDENTIALS',
      `${where}, but neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set`,
      { hint: 'run inside an ECS task or EKS pod that sets them, or use another credential_source' },
    );
  }
  const providers = await (options.providers ?? sdkProviders)();
  const limits = { timeout: METADATA_TIMEOUT_MS, maxRetries: METADATA_MAX_RETRIES };
  const provider = source === 'EcsContainer' ? providers.fromContainer({ ...container, ...limits }) : providers.fromInstanceMetadata(limits);
  const service = source === 'EcsContainer' ? 'the container credentials endpoint' : 'the EC2 instance metadata service';
  let got: Awaited<ReturnType<Provider>>;
  try {
    got = await provider();
  } catch (cause) {
    // The SDK's message says what failed (refused, 404, not loopback) and never carries the
    // credentials or the authorization token.
    const reason = cause instanceof Error ? cause.message.replace(/\s+/g, ' ').slice(0, 200) : String(cause);
    throw new VaultError('PROFILE_NO_CREDENTIALS', `${where}, but ${service} gave no credentials (${reason})`, {
      hint: source === 'EcsContainer' ? 'check the AWS_CONTAINER_* variables point at a running endpoint' : 'run on an EC2 instance with an instance profile, or use another credential_source',
      cause,
    });
  }
  return { accessKeyId: got.accessKeyId, secretAccessKey: got.secretAccessKey, sessionToken: got.sessionToken, expiration: got.expiration };
}
