import { describe, expect, it } from 'vitest';
import { VaultError } from '../errors.js';
import { parseConfigFile } from './configFile.js';
import { ConfigLoader } from './configLoader.js';
import { chainOf } from './profileConfig.js';

const PATH = '/home/u/.aws/config';
const CONFIG = `
[sso-session my-sso]
sso_start_url = https://my-org.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile dev]
sso_session = my-sso
sso_account_id = 111111111111
sso_role_name = Developer
region = eu-central-1

[profile legacy]
sso_start_url = https://legacy.awsapps.com/start/#/
sso_region = us-east-1
sso_account_id = 222222222222
sso_role_name = ReadOnly

[profile deploy]
source_profile = dev
role_arn = arn:aws:iam::333333333333:role/deploy
`;

const load = (text: string, name: string) => new ConfigLoader(parseConfigFile(text, PATH)).load(name);

function lineOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof VaultError) return `${error.code}: ${error.toLine()}`;
    throw error;
  }
  throw new Error('expected a VaultError');
}

describe('IAM Identity Center settings', () => {
  it('reads a profile naming an [sso-session] section as the AWS CLI writes it', () => {
    expect(load(CONFIG, 'dev').sso).toEqual({
      sessionName: 'my-sso',
      startUrl: 'https://my-org.awsapps.com/start',
      region: 'eu-west-1',
      accountId: '111111111111',
      roleName: 'Developer',
      registrationScopes: ['sso:account:access'],
    });
    expect(load(CONFIG, 'dev').region).toBe('eu-central-1');
  });

  it('reads the legacy form with sso_start_url and sso_region in the profile (no scopes)', () => {
    expect(load(CONFIG, 'legacy').sso).toEqual({
      startUrl: 'https://legacy.awsapps.com/start/#/',
      region: 'us-east-1',
      accountId: '222222222222',
      roleName: 'ReadOnly',
      registrationScopes: [],
    });
  });

  it('chains a role on top of an SSO source_profile', () => {
    const chain = chainOf(load(CONFIG, 'deploy'));
    expect(chain.map((p) => p.name)).toEqual(['dev', 'deploy']);
    expect(chain[0]!.sso?.roleName).toBe('Developer');
    expect(chain[1]!.sso).toBeUndefined();
  });

  it('does not make the sso-session section a profile', () => {
    expect(new ConfigLoader(parseConfigFile(CONFIG, PATH)).profileNames()).toEqual(['dev', 'legacy', 'deploy']);
  });

  it('refuses an sso_session that names no section, naming the profile and the key', () => {
    const text = CONFIG.replace('sso_session = my-sso', 'sso_session = my-ssso');
    expect(lineOf(() => load(text, 'dev'))).toBe(
      `PROFILE_INVALID: profile dev in ${PATH}: sso_session "my-ssso" names no [sso-session my-ssso] section in ${PATH}; add [sso-session my-ssso] with sso_start_url and sso_region, or fix sso_session`,
    );
  });

  it('refuses a start URL that is not https', () => {
    const text = CONFIG.replace('https://legacy.awsapps.com/start/#/', 'http://legacy.awsapps.com/start');
    expect(lineOf(() => load(text, 'legacy'))).toMatch(/^PROFILE_INVALID: profile legacy in \S+: sso_start_url "http:\/\/legacy.awsapps.com\/start" is not an https URL; /);
    const inSession = CONFIG.replace('https://my-org.awsapps.com/start', 'my-org.awsapps.com/start');
    expect(lineOf(() => load(inSession, 'dev'))).toMatch(/^PROFILE_INVALID: profile dev in \S+: sso_start_url "my-org.awsapps.com\/start" is not an https URL; /);
  });

  it('refuses an account id that is not twelve digits', () => {
    const text = CONFIG.replace('sso_account_id = 111111111111', 'sso_account_id = 11111111111');
    expect(lineOf(() => load(text, 'dev'))).toBe(
      `PROFILE_INVALID: profile dev in ${PATH}: sso_account_id "11111111111" is not twelve digits; set sso_account_id to a 12-digit AWS account id, e.g. 123456789012`,
    );
  });

  it('refuses a profile with no sso_role_name, and an sso-session with no region', () => {
    expect(lineOf(() => load(CONFIG.replace('sso_role_name = Developer\n', ''), 'dev'))).toMatch(/profile dev in \S+: sso_role_name is not set; /);
    expect(lineOf(() => load(CONFIG.replace('sso_region = eu-west-1\n', ''), 'dev'))).toMatch(/\[sso-session my-sso\] has no sso_region; /);
  });

  it('a role chain whose SSO source is broken fails at load time, naming the SSO profile', () => {
    const text = CONFIG.replace('sso_account_id = 111111111111', 'sso_account_id = abc');
    expect(lineOf(() => load(text, 'deploy'))).toMatch(/^PROFILE_INVALID: profile dev in \S+: sso_account_id "abc"/);
  });
});
