import { homedir } from 'node:os';
import { VaultError } from '../errors.js';
import type { Env } from './paths.js';
import { CREDENTIAL_SOURCES, type CredentialSource, type ProfileConfig } from './profileConfig.js';
import type { ProfileSection } from './profileSection.js';

type RoleSource = Pick<ProfileConfig, 'webIdentityTokenFile' | 'webIdentityTokenProcess' | 'credentialSource'>;

/**
 * Where a role profile's first credentials come from when it is not a stored key: a web identity
 * token (file or process) or the AWS CLI's credential_source. Each names exactly one way, so two at
 * once (or one without the role it serves) is refused here, before any network call, rather than
 * one silently winning as in the SDKs' provider order.
 */
export function parseRoleSource(s: ProfileSection, where: string, env: Env): RoleSource {
  const file = s.web_identity_token_file;
  const process = s.web_identity_token_process;
  const source = s.credential_source;
  const named = (
    [
      ['web_identity_token_file', file],
      ['web_identity_token_process', process],
      ['credential_source', source],
      ['source_profile', s.source_profile],
      ['credential_process', s.credential_process],
    ] as const
  ).filter(([, value]) => value !== undefined && value !== '');
  const own = named.filter(([key]) => key !== 'source_profile' && key !== 'credential_process');
  if (own.length === 0) return {};
  const first = own[0]![0];
  if (named.length > 1) {
    throw new VaultError('PROFILE_INVALID', `${where}: ${named.map(([key]) => key).join(' and ')} are both set`, {
      hint: `keep ${first} and remove the others: a role profile takes its credentials from one place`,
    });
  }
  if (s.role_arn === undefined || s.role_arn === '') {
    throw new VaultError('PROFILE_INVALID', `${where}: ${first} is set without role_arn`, {
      hint: `add role_arn = arn:aws:iam::123456789012:role/NAME (the role ${first} assumes)`,
    });
  }
  if (source !== undefined) {
    if (!(CREDENTIAL_SOURCES as readonly string[]).includes(source)) {
      throw new VaultError('PROFILE_INVALID', `${where}: credential_source "${source}" is not one of ${CREDENTIAL_SOURCES.join(', ')}`, {
        hint: 'set credential_source = Environment, Ec2InstanceMetadata or EcsContainer (spelt as the AWS CLI spells them)',
      });
    }
    return { credentialSource: source as CredentialSource };
  }
  if (file !== undefined) return { webIdentityTokenFile: expandHome(file, env) };
  return { webIdentityTokenProcess: process };
}

/** `~/…` as botocore reads it (os.path.expanduser): EKS and CI configs are written that way. */
function expandHome(path: string, env: Env): string {
  if (path === '~' || path.startsWith('~/')) return (env.HOME ?? homedir()) + path.slice(1);
  return path;
}
