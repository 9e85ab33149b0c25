import { VaultError } from '../errors.js';
import type { SsoConfig } from './profileConfig.js';
import type { ProfileSection } from './profileSection.js';
import { REGION } from './validate.js';

/** An AWS account id: twelve digits (IAM's account id format). */
export const SSO_ACCOUNT_ID = /^\d{12}$/;

/**
 * The IAM Identity Center settings of a profile, checked, as the AWS CLI reads them: the profile's
 * `sso_session` names an `[sso-session NAME]` holding `sso_start_url`, `sso_region` and
 * `sso_registration_scopes`; the legacy form has `sso_start_url`/`sso_region` in the profile. The
 * profile holds `sso_account_id` and `sso_role_name`. Undefined for a profile with no `sso_` setting.
 * Everything is checked here, before any network call, so a typo is one line naming the key.
 */
export function resolveSso(
  s: ProfileSection,
  ssoSessions: ReadonlyMap<string, Record<string, string>>,
  where: string,
  configPath: string,
): SsoConfig | undefined {
  if (s.sso_session === undefined && s.sso_start_url === undefined && s.sso_account_id === undefined && s.sso_role_name === undefined) return undefined;
  const bad = (message: string, hint: string) => new VaultError('PROFILE_INVALID', `${where}: ${message}`, { hint });
  let startUrl = s.sso_start_url;
  let region = s.sso_region;
  let scopes: string | undefined;
  const sessionName = s.sso_session;
  if (sessionName !== undefined) {
    const section = ssoSessions.get(sessionName);
    if (!section) {
      throw bad(`sso_session "${sessionName}" names no [sso-session ${sessionName}] section in ${configPath}`, `add [sso-session ${sessionName}] with sso_start_url and sso_region, or fix sso_session`);
    }
    // The AWS CLI refuses a profile whose own sso_start_url/sso_region disagree with its session's.
    for (const [key, own] of [['sso_start_url', startUrl], ['sso_region', region]] as const) {
      if (own !== undefined && section[key] !== undefined && own !== section[key]) {
        throw bad(`${key} "${own}" differs from the one in [sso-session ${sessionName}]`, `remove ${key} from the profile (the sso-session's is used)`);
      }
    }
    startUrl = section.sso_start_url;
    region = section.sso_region;
    scopes = section.sso_registration_scopes;
    if (startUrl === undefined) throw bad(`[sso-session ${sessionName}] has no sso_start_url`, 'add sso_start_url = https://YOUR-PORTAL.awsapps.com/start to the sso-session');
    if (region === undefined) throw bad(`[sso-session ${sessionName}] has no sso_region`, 'add sso_region (the region of your IAM Identity Center) to the sso-session');
  }
  if (startUrl === undefined) throw bad('sso_start_url is not set', 'set sso_session to an [sso-session NAME] section, or sso_start_url and sso_region');
  if (!isHttps(startUrl)) throw bad(`sso_start_url "${startUrl}" is not an https URL`, 'use the AWS access portal URL, e.g. https://my-org.awsapps.com/start');
  if (region === undefined) throw bad('sso_region is not set', 'set sso_region to the region of your IAM Identity Center, e.g. eu-west-1');
  if (!REGION.test(region)) throw bad(`sso_region "${region}" is not an AWS region name`, 'set sso_region to a region such as eu-west-1');
  const accountId = s.sso_account_id;
  if (accountId === undefined) throw bad('sso_account_id is not set', 'set sso_account_id to the 12-digit id of the account to sign in to');
  if (!SSO_ACCOUNT_ID.test(accountId)) throw bad(`sso_account_id "${accountId}" is not twelve digits`, 'set sso_account_id to a 12-digit AWS account id, e.g. 123456789012');
  const roleName = s.sso_role_name;
  if (roleName === undefined || roleName === '') throw bad('sso_role_name is not set', 'set sso_role_name to the permission set to use, e.g. ReadOnly');
  return {
    ...(sessionName !== undefined ? { sessionName } : {}),
    startUrl,
    region,
    accountId,
    roleName,
    registrationScopes: (scopes ?? '')
      .split(',')
      .map((scope) => scope.trim())
      .filter((scope) => scope !== ''),
  };
}

function isHttps(raw: string): boolean {
  try {
    return new URL(raw).protocol === 'https:';
  } catch {
    return false;
  }
}
