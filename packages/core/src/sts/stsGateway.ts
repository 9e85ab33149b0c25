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

/** AssumeRoleWithWebIdentity: no credentials sign it, the token is the proof. */
export interface AssumeRoleWithWebIdentityInput {
  roleArn: string;
  roleSessionName: string;
  webIdentityToken: string;
  durationSeconds?: number;
}

export interface CallerIdentity {
  account: string;
  arn: string;
  userId: string;
}

/**
 * Where STS calls go, as the SDK's endpoint rules take it: a region and the switches the STS
 * ruleset reads. The URL itself is chosen by the SDK (see sdkStsGateway.ts), except when the user
 * named one. Built by resolveStsTarget, without loading the SDK.
 */
export interface StsTarget {
  region: string;
  /** Set only when the user named one (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL or endpoint_url). */
  endpoint?: string;
  /** AWS_USE_FIPS_ENDPOINT */
  useFipsEndpoint: boolean;
  /** AWS_USE_DUALSTACK_ENDPOINT */
  useDualstackEndpoint: boolean;
  /** sts_regional_endpoints = legacy: the ruleset sends its legacy regions to sts.amazonaws.com. */
  useGlobalEndpoint: boolean;
}

/**
 * The only STS operations vault needs. The SDK adapter implements it; tests may pass a fake.
 * Each call is signed with the credentials given, so one gateway serves every hop of a chain.
 */
export interface StsGateway {
  getSessionToken(credentials: Credentials, target: StsTarget, input: GetSessionTokenInput): Promise<TemporaryCredentials>;
  assumeRole(credentials: Credentials, target: StsTarget, input: AssumeRoleInput): Promise<AssumedRoleCredentials>;
  getCallerIdentity(credentials: Credentials, target: StsTarget): Promise<CallerIdentity>;
  /**
   * Unsigned, as the SDKs send it. Optional so that fakes written for the other calls need not
   * grow it; a chain that needs it and finds none says so (fromWebIdentity.ts).
   */
  assumeRoleWithWebIdentity?(target: StsTarget, input: AssumeRoleWithWebIdentityInput): Promise<AssumedRoleCredentials>;
}
