import type { Tag } from '../sts/stsGateway.js';

/** The AWS CLI's credential_source values (botocore's CanonicalNameCredentialSourcer). */
export const CREDENTIAL_SOURCES = ['Environment', 'Ec2InstanceMetadata', 'EcsContainer'] as const;
export type CredentialSource = (typeof CREDENTIAL_SOURCES)[number];

/** A profile after include_profile, [default] and the environment have been applied, and checked. */
export interface ProfileConfig {
  name: string;
  /**
   * Profiles whose stored key may serve this one when it has no source_profile: itself first, then
   * each profile it includes (so `include_profile = central-account` with a `role_arn` assumes the
   * role from central-account's key, as aws-vault users write it).
   */
  keyProfileNames: string[];
  /** The resolved source_profile; undefined for a profile that uses its own (or included) key. */
  source?: ProfileConfig;
  region?: string;
  mfaSerial?: string;
  mfaProcess?: string;
  roleArn?: string;
  externalId?: string;
  roleSessionName?: string;
  durationSeconds?: number;
  sessionTags: Tag[];
  transitiveSessionTags: string[];
  sourceIdentity?: string;
  credentialProcess?: string;
  /** role_arn is assumed with AssumeRoleWithWebIdentity, the token read from this file at every call. */
  webIdentityTokenFile?: string;
  /** aws-vault's alternative: a command that prints the web identity token. */
  webIdentityTokenProcess?: string;
  /** The AWS CLI's credential_source: where the credentials that assume role_arn come from. */
  credentialSource?: CredentialSource;
  endpointUrl?: string;
  stsRegionalEndpoints?: 'regional' | 'legacy';
  /** IAM Identity Center: the role credentials come from GetRoleCredentials with a signed-in token. */
  sso?: SsoConfig;
  /** False when the profile is not in the config file at all (it may still have a stored key). */
  declared: boolean;
}

/** Where a profile signs in to IAM Identity Center, and which account and role it takes. */
export interface SsoConfig {
  /** The `[sso-session NAME]` the settings came from; undefined for the legacy in-profile form. */
  sessionName?: string;
  /** The AWS access portal URL (https); the cached token is filed under it. */
  startUrl: string;
  /** The region of the Identity Center instance (OIDC and the portal are called there). */
  region: string;
  accountId: string;
  roleName: string;
  /** `sso_registration_scopes`; with them the registration gives a refresh token. */
  registrationScopes: string[];
}

/** Profiles from the one holding the key (index 0) to the one asked for (last). */
export function chainOf(profile: ProfileConfig): ProfileConfig[] {
  const chain: ProfileConfig[] = [];
  for (let p: ProfileConfig | undefined = profile; p; p = p.source) chain.unshift(p);
  return chain;
}

export function describeChain(profile: ProfileConfig): string {
  return chainOf(profile)
    .map((p) => p.name)
    .join(' → ');
}
