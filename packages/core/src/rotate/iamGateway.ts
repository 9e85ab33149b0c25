import type { Env } from '../config/paths.js';
import type { ProfileConfig } from '../config/profileConfig.js';
import type { Credentials } from '../credentials.js';

/** Where IAM calls go: a region for signing (IAM is global) and the URL the user named, if any. */
export interface IamTarget {
  region: string;
  endpoint?: string;
}

export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The IAM calls `vault rotate` makes; the SDK adapter implements it, tests pass fakes. */
export interface IamGateway {
  getUser(credentials: Credentials, target: IamTarget): Promise<{ userName: string; arn: string }>;
  createAccessKey(credentials: Credentials, target: IamTarget, userName: string): Promise<AccessKey>;
  deleteAccessKey(credentials: Credentials, target: IamTarget, userName: string, accessKeyId: string): Promise<void>;
}

/**
 * AWS_ENDPOINT_URL_IAM, then AWS_ENDPOINT_URL, then the profile's endpoint_url (none of them under
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS), as the SDKs read them; else the SDK's own IAM endpoint for
 * the profile's region (iam.amazonaws.com, or the partition's).
 */
export function resolveIamTarget(profile: Pick<ProfileConfig, 'region' | 'endpointUrl'>, env: Env): IamTarget {
  const region = profile.region ?? 'us-east-1';
  const ignore = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.toLowerCase() === 'true';
  const endpoint = ignore ? undefined : env.AWS_ENDPOINT_URL_IAM || env.AWS_ENDPOINT_URL || profile.endpointUrl;
  return endpoint ? { region, endpoint: endpoint.replace(/\/+$/, '') } : { region };
}
