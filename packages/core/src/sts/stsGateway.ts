import type { AssumedRoleCredentials, Credentials, TemporaryCredentials } from '../credentials.js';

export interface Tag {
  key: string;
  value: string;
}

export interface GetSessionTokenInput {
  durationSeconds?: number;
  serialNumber?: string;
  tokenCode?: string;
}

export interface AssumeRoleInput {
  roleArn: string;
  roleSessionName: string;
  durationSeconds?: number;
  externalId?: string;
  serialNumber?: string;
  tokenCode?: string;
  tags?: Tag[];
  transitiveTagKeys?: string[];
  sourceIdentity?: string;
}

export interface CallerIdentity {
  account: string;
  arn: string;
  userId: string;
}

/** Where STS calls go; resolved from region and endpoint settings (see resolveStsEndpoint). */
export interface StsTarget {
  region: string;
  /** Full URL, e.g. https://sts.eu-west-1.amazonaws.com or http://127.0.0.1:4566 */
  endpoint: string;
}

/**
 * The only STS operations vault needs. The SDK adapter implements it; tests may pass a fake.
 * Each call is signed with the credentials given, so one gateway serves every hop of a chain.
 */
export interface StsGateway {
  getSessionToken(credentials: Credentials, target: StsTarget, input: GetSessionTokenInput): Promise<TemporaryCredentials>;
  assumeRole(credentials: Credentials, target: StsTarget, input: AssumeRoleInput): Promise<AssumedRoleCredentials>;
  getCallerIdentity(credentials: Credentials, target: StsTarget): Promise<CallerIdentity>;
}
