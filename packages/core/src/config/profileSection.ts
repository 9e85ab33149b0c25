/**
 * A profile exactly as written in the config file: strings, nothing inherited, nothing checked.
 * Resolution (include_profile, [default], env, validation) happens in configLoader.ts.
 */
export interface ProfileSection {
  name: string;
  source_profile?: string;
  include_profile?: string;
  role_arn?: string;
  mfa_serial?: string;
  external_id?: string;
  role_session_name?: string;
  duration_seconds?: string;
  region?: string;
  session_tags?: string;
  transitive_session_tags?: string;
  source_identity?: string;
  credential_process?: string;
  mfa_process?: string;
  endpoint_url?: string;
  sts_regional_endpoints?: string;
  web_identity_token_file?: string;
  web_identity_token_process?: string;
  credential_source?: string;
  sso_session?: string;
  sso_start_url?: string;
  sso_region?: string;
  sso_account_id?: string;
  sso_role_name?: string;
  sso_registration_scopes?: string;
  [setting: string]: string | undefined;
}

/** The setting names vault understands; anything else in a section is kept but ignored. */
export const PROFILE_SETTINGS = [
  'source_profile',
  'include_profile',
  'role_arn',
  'mfa_serial',
  'external_id',
  'role_session_name',
  'duration_seconds',
  'region',
  'session_tags',
  'transitive_session_tags',
  'source_identity',
  'credential_process',
  'mfa_process',
  'endpoint_url',
  'sts_regional_endpoints',
  'web_identity_token_file',
  'web_identity_token_process',
  'credential_source',
  'sso_session',
  'sso_start_url',
  'sso_region',
  'sso_account_id',
  'sso_role_name',
  'sso_registration_scopes',
] as const;

export type ProfileSetting = (typeof PROFILE_SETTINGS)[number];
