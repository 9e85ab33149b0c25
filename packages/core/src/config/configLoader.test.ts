import { describe, expect, it } from 'vitest';
import { VaultError } from '../errors.js';
import { parseConfigFile } from './configFile.js';
import { ConfigLoader } from './configLoader.js';
import { chainOf, describeChain } from './profileConfig.js';

/** The README's Configuration example: a central account with MFA, and two ways of reaching roles from it. */
const README_CONFIG = `
[profile central-account]
region = ap-northeast-1
mfa_serial = arn:aws:iam::111111111111:mfa/central-user

[profile account-a]
include_profile = central-account          ; aws-vault style
role_arn = arn:aws:iam::222222222222:role/account-a-assume-role

[profile account-b]
source_profile = central-account           ; AWS CLI style
role_arn = arn:aws:iam::333333333333:role/account-b-role
mfa_serial = arn:aws:iam::111111111111:mfa/central-user
duration_seconds = 3600
external_id = optional-external-id

[profile chained]
source_profile = account-b
role_arn = arn:aws:iam::444444444444:role/deeper
session_tags = Team=blue, Env=dev
transitive_session_tags = Team
source_identity = jane.doe
`;

const loader = (text: string, env: Record<string, string> = {}, region?: string) =>
  new ConfigLoader(parseConfigFile(text, '/home/u/.aws/config'), { env, region });

function errorOf(fn: () => unknown): VaultError {
  try {
    fn();
  } catch (error) {
    if (error instanceof VaultError) return error;
    throw error;
  }
  throw new Error('expected a VaultError');
}

describe('config resolution: the README configuration example', () => {
  it('central-account: a root profile with its own region and MFA device', () => {
    const p = loader(README_CONFIG).load('central-account');
    expect(p).toMatchObject({ region: 'ap-northeast-1', mfaSerial: 'arn:aws:iam::111111111111:mfa/central-user', keyProfileNames: ['central-account'] });
    expect(p.source).toBeUndefined();
    expect(p.roleArn).toBeUndefined();
  });

  it('account-a (include_profile): inherits region and MFA and uses the included key', () => {
    const p = loader(README_CONFIG).load('account-a');
    expect(p.roleArn).toBe('arn:aws:iam::222222222222:role/account-a-assume-role');
    expect(p.region).toBe('ap-northeast-1');
    expect(p.mfaSerial).toBe('arn:aws:iam::111111111111:mfa/central-user');
    expect(p.keyProfileNames).toEqual(['account-a', 'central-account']);
    expect(p.source).toBeUndefined();
  });

  it('account-b (source_profile): chain central-account → account-b with duration and external id', () => {
    const p = loader(README_CONFIG).load('account-b');
    expect(describeChain(p)).toBe('central-account → account-b');
    expect(p).toMatchObject({ durationSeconds: 3600, externalId: 'optional-external-id', region: undefined });
    expect(p.source?.mfaSerial).toBe('arn:aws:iam::111111111111:mfa/central-user');
  });

  it('a chain of two roles with tags and source identity', () => {
    const p = loader(README_CONFIG).load('chained');
    expect(chainOf(p).map((x) => x.name)).toEqual(['central-account', 'account-b', 'chained']);
    expect(p.sessionTags).toEqual([{ key: 'Team', value: 'blue' }, { key: 'Env', value: 'dev' }]);
    expect(p.transitiveSessionTags).toEqual(['Team']);
    expect(p.sourceIdentity).toBe('jane.doe');
  });
});

describe('config resolution: precedence', () => {
  const withDefault = `[default]\nregion = eu-west-1\nmfa_serial = arn:aws:iam::111111111111:mfa/d\nrole_arn = arn:aws:iam::111111111111:role/not-lent\n[profile p]\nregion = us-west-2\n[profile q]\n`;

  it('[default] fills what a profile leaves empty, but never lends role_arn', () => {
    const q = loader(withDefault).load('q');
    expect(q.region).toBe('eu-west-1');
    expect(q.mfaSerial).toBe('arn:aws:iam::111111111111:mfa/d');
    expect(q.roleArn).toBeUndefined();
  });

  it("a profile's own setting beats [default]", () => {
    expect(loader(withDefault).load('p').region).toBe('us-west-2');
  });

  it('AWS_REGION beats AWS_DEFAULT_REGION beats the file; --region beats all', () => {
    expect(loader(withDefault, { AWS_DEFAULT_REGION: 'ca-central-1' }).load('p').region).toBe('ca-central-1');
    expect(loader(withDefault, { AWS_DEFAULT_REGION: 'ca-central-1', AWS_REGION: 'sa-east-1' }).load('p').region).toBe('sa-east-1');
    expect(loader(withDefault, { AWS_REGION: 'sa-east-1' }, 'af-south-1').load('p').region).toBe('af-south-1');
  });

  it('include_profile settings fill before [default] does', () => {
    const text = `[default]\nregion = eu-west-1\n[profile base]\nregion = us-east-2\n[profile top]\ninclude_profile = base\n`;
    expect(loader(text).load('top').region).toBe('us-east-2');
  });

  it('a bare [name] section is a profile; [profile name] wins over it', () => {
    const text = `[bare]\nregion = eu-north-1\n[both]\nregion = eu-west-3\n[profile both]\nregion = eu-south-1\n`;
    expect(loader(text).load('bare').region).toBe('eu-north-1');
    expect(loader(text).load('both').region).toBe('eu-south-1');
  });

  it('profile names with dots stay whole', () => {
    const p = loader(`[profile team.prod]\nregion = eu-west-1\n`).load('team.prod');
    expect(p.declared).toBe(true);
    expect(p.region).toBe('eu-west-1');
  });

  it('source_profile naming itself means the profile uses its own key', () => {
    const p = loader(`[profile self]\nsource_profile = self\nrole_arn = arn:aws:iam::111111111111:role/r\n`).load('self');
    expect(p.source).toBeUndefined();
    expect(p.keyProfileNames).toEqual(['self']);
  });

  it('an undeclared profile resolves (it may still have a stored key) and says so', () => {
    const p = loader(README_CONFIG).load('only-in-keyring');
    expect(p.declared).toBe(false);
  });
});

describe('config resolution: every error names the profile and the chain', () => {
  const cases: Array<[string, string, string, string, RegExp]> = [
    ['source_profile cycle', '[profile a]\nsource_profile = b\n[profile b]\nsource_profile = a\n', 'a', 'PROFILE_CYCLE', /a → b → a/],
    ['include_profile cycle', '[profile a]\ninclude_profile = b\n[profile b]\ninclude_profile = a\n', 'a', 'PROFILE_CYCLE', /a → b → a/],
    ['missing include profile', '[profile a]\ninclude_profile = ghost\n', 'a', 'PROFILE_NOT_FOUND', /include_profile ghost/],
    ['malformed role ARN', '[profile a]\nrole_arn = arn:aws:iam::12:role/r\n', 'a', 'PROFILE_INVALID', /profile a .*role_arn "arn:aws:iam::12:role\/r" is not an IAM role ARN/],
    ['malformed MFA serial', '[profile a]\nmfa_serial = nope\n', 'a', 'PROFILE_INVALID', /mfa_serial "nope"/],
    ['duration below range', '[profile a]\nduration_seconds = 60\n', 'a', 'PROFILE_INVALID', /duration_seconds "60" is out of range/],
    ['duration above range', '[profile a]\nduration_seconds = 90000\n', 'a', 'PROFILE_INVALID', /out of range/],
    ['duration not a number', '[profile a]\nduration_seconds = 1h\n', 'a', 'PROFILE_INVALID', /duration_seconds "1h"/],
    ['bad region', '[profile a]\nregion = mars\n', 'a', 'PROFILE_INVALID', /region "mars"/],
    ['bad session tags', '[profile a]\nsession_tags = novalue\n', 'a', 'PROFILE_INVALID', /session_tags entry "novalue"/],
    ['bad role session name', '[profile a]\nrole_session_name = has space\n', 'a', 'PROFILE_INVALID', /role_session_name/],
    ['bad endpoint url', '[profile a]\nendpoint_url = ftp://x\n', 'a', 'PROFILE_INVALID', /endpoint_url/],
    ['bad sts_regional_endpoints', '[profile a]\nsts_regional_endpoints = global\n', 'a', 'PROFILE_INVALID', /sts_regional_endpoints/],
    ['error deep in a chain names the chain', '[profile a]\nsource_profile = b\n[profile b]\nsource_profile = c\n[profile c]\nsource_profile = b\n', 'a', 'PROFILE_CYCLE', /a → b → c → b/],
  ];
  it.each(cases)('%s', (_name, text, profile, code, message) => {
    const error = errorOf(() => loader(text).load(profile));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.toLine()).not.toContain('\n');
    expect(error.hint).toBeTruthy();
  });

  it('an unclosed section header is a parse error with its line number', () => {
    const error = errorOf(() => parseConfigFile('[profile a]\nregion = eu-west-1\n[profile b\n', '/c'));
    expect(error.code).toBe('CONFIG_PARSE');
    expect(error.message).toMatch(/line 3/);
  });

  it('a binary file is refused', () => {
    expect(errorOf(() => parseConfigFile('\u0000\u0001', '/c')).code).toBe('CONFIG_PARSE');
  });
});

describe('region names', () => {
  const accepted = ['us-east-1', 'eu-west-1', 'cn-north-1', 'us-gov-west-1', 'us-iso-east-1', 'us-isob-east-1', 'eu-isoe-west-1', 'us-isof-south-1', 'eusc-de-east-1', 'ap-southeast-5', 'mx-central-1', 'aws-global'];
  it.each(accepted)('%s is accepted', (region) => {
    expect(loader(`[profile p]\nregion = ${region}\n`).load('p').region).toBe(region);
  });

  const refused = ['mars', 'EU-WEST-1', 'eu-west', 'eu_west_1', 'eu-west-1.', 'https://eu-west-1', 'eu west 1', '-eu-west-1', 'eu--west-1'];
  it.each(refused)('"%s" is refused in one line that names the setting and the sources of a region', (region) => {
    const error = errorOf(() => loader(`[profile p]\nregion = ${region}\n`).load('p'));
    expect(error.code).toBe('PROFILE_INVALID');
    expect(error.toLine()).not.toContain('\n');
    expect(error.message).toContain(`region "${region}" is not an AWS region name`);
    expect(error.hint).toMatch(/AWS_REGION/);
  });

  it('AWS_REGION with a sovereign-cloud region is accepted like the file', () => {
    expect(loader('[profile p]\n', { AWS_REGION: 'eusc-de-east-1' }).load('p').region).toBe('eusc-de-east-1');
  });
});

describe('MFA devices along a chain', () => {
  const twoDevices = `
[profile base]
mfa_serial = arn:aws:iam::111111111111:mfa/base-user
[profile admin]
source_profile = base
role_arn = arn:aws:iam::222222222222:role/admin
mfa_serial = arn:aws:iam::222222222222:mfa/other-device
[profile deeper]
source_profile = admin
role_arn = arn:aws:iam::333333333333:role/deeper
`;

  it('two different mfa_serial values in one chain are refused in one line naming both and where each is set', () => {
    const error = errorOf(() => loader(twoDevices).load('deeper'));
    expect(error.code).toBe('PROFILE_INVALID');
    expect(error.message).toBe(
      'profile deeper: its chain base → admin → deeper names two MFA devices, arn:aws:iam::111111111111:mfa/base-user (profile base) and arn:aws:iam::222222222222:mfa/other-device (profile admin)',
    );
    expect(error.hint).toMatch(/one mfa_serial/);
    expect(error.toLine()).not.toContain('\n');
  });

  it('the profile before the second device still loads', () => {
    expect(loader(twoDevices).load('base').mfaSerial).toBe('arn:aws:iam::111111111111:mfa/base-user');
  });

  it('the same device named on several profiles of a chain is one MFA session, not an error', () => {
    expect(describeChain(loader(README_CONFIG).load('chained'))).toBe('central-account → account-b → chained');
  });
});
