import { describe, expect, it } from 'vitest';
import { VaultError } from '../errors.js';
import { parseConfigFile } from './configFile.js';
import { ConfigLoader } from './configLoader.js';

const load = (text: string, name: string, env: Record<string, string> = { HOME: '/home/u' }) =>
  new ConfigLoader(parseConfigFile(text, '/home/u/.aws/config'), { env }).load(name);

function errorOf(fn: () => unknown): VaultError {
  try {
    fn();
  } catch (error) {
    if (error instanceof VaultError) return error;
    throw error;
  }
  throw new Error('expected a VaultError');
}

describe('config: web identity and credential_source', () => {
  it('reads web_identity_token_file with ~ expanded as botocore does, and keeps role_session_name', () => {
    const p = load('[profile ci]\nrole_arn = arn:aws:iam::111111111111:role/ci\nweb_identity_token_file = ~/.tokens/ci\nrole_session_name = run-7\n', 'ci');
    expect(p).toMatchObject({ roleArn: 'arn:aws:iam::111111111111:role/ci', webIdentityTokenFile: '/home/u/.tokens/ci', roleSessionName: 'run-7' });
    expect(p.source).toBeUndefined();
  });

  it('reads web_identity_token_process and each credential_source value as the AWS CLI spells it', () => {
    const text =
      '[profile p]\nrole_arn = arn:aws:iam::111111111111:role/ci\nweb_identity_token_process = get-token --audience sts\n' +
      '[profile e]\nrole_arn = arn:aws:iam::111111111111:role/r\ncredential_source = Environment\n' +
      '[profile i]\nrole_arn = arn:aws:iam::111111111111:role/r\ncredential_source = Ec2InstanceMetadata\n' +
      '[profile c]\nrole_arn = arn:aws:iam::111111111111:role/r\ncredential_source = EcsContainer\n';
    expect(load(text, 'p').webIdentityTokenProcess).toBe('get-token --audience sts');
    expect(['e', 'i', 'c'].map((name) => load(text, name).credentialSource)).toEqual(['Environment', 'Ec2InstanceMetadata', 'EcsContainer']);
  });

  it('a profile can name a web identity profile as its source_profile', () => {
    const text =
      '[profile ci]\nrole_arn = arn:aws:iam::111111111111:role/ci\nweb_identity_token_file = /t\n' +
      '[profile deploy]\nsource_profile = ci\nrole_arn = arn:aws:iam::222222222222:role/deploy\n';
    expect(load(text, 'deploy').source?.webIdentityTokenFile).toBe('/t');
  });

  it('a credential_source value that does not exist: one line naming the profile, the key and the values', () => {
    const error = errorOf(() => load('[profile x]\nrole_arn = arn:aws:iam::111111111111:role/r\ncredential_source = Ec2Metadata\n', 'x'));
    expect(error.code).toBe('PROFILE_INVALID');
    expect(error.toLine()).toBe(
      'profile x in /home/u/.aws/config: credential_source "Ec2Metadata" is not one of Environment, Ec2InstanceMetadata, EcsContainer; set credential_source = Environment, Ec2InstanceMetadata or EcsContainer (spelt as the AWS CLI spells them)',
    );
  });

  it('credential_source and source_profile together are refused (the AWS CLI takes one)', () => {
    const error = errorOf(() => load('[profile x]\nrole_arn = arn:aws:iam::111111111111:role/r\ncredential_source = Environment\nsource_profile = y\n[profile y]\n', 'x'));
    expect(error.message).toBe('profile x in /home/u/.aws/config: credential_source and source_profile are both set');
  });

  it('web_identity_token_file and web_identity_token_process together are refused', () => {
    const error = errorOf(() =>
      load('[profile x]\nrole_arn = arn:aws:iam::111111111111:role/r\nweb_identity_token_file = /t\nweb_identity_token_process = get-token\n', 'x'),
    );
    expect(error.message).toBe('profile x in /home/u/.aws/config: web_identity_token_file and web_identity_token_process are both set');
  });

  it('web_identity_token_file without role_arn: one line naming the key', () => {
    const error = errorOf(() => load('[profile x]\nweb_identity_token_file = /t\n', 'x'));
    expect(error.message).toBe('profile x in /home/u/.aws/config: web_identity_token_file is set without role_arn');
  });

  it('credential_source is not lent by [default]: it decides which credentials a profile uses', () => {
    const p = load('[default]\ncredential_source = Environment\nrole_arn = arn:aws:iam::111111111111:role/r\n[profile plain]\nregion = eu-west-1\n', 'plain');
    expect(p.credentialSource).toBeUndefined();
  });
});
