import { describe, expect, it } from 'vitest';
import { parseConfigFile } from './configFile.js';

const settingOf = (text: string, profile: string, key: string) => parseConfigFile(text, '/c').profiles.get(profile)?.[key];

describe('config values keep ; and # that are not preceded by whitespace', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['credential_process with ; inside quotes', 'credential_process = sh -c "printf x; printf y"', 'sh -c "printf x; printf y"'],
    ['mfa_process with a pipe and ;', "mfa_process = op item get aws --otp | tr -d '\\n';echo", "op item get aws --otp | tr -d '\\n';echo"],
    ['endpoint_url with #', 'endpoint_url = https://sts.example.com/#proxy', 'https://sts.example.com/#proxy'],
    ['sso_start_url with #/', 'sso_start_url = https://example.awsapps.com/start/#/', 'https://example.awsapps.com/start/#/'],
    ['a value that starts with #', 'external_id = #hash-led', undefined],
    ['whitespace then ; starts a comment', 'region = eu-west-1   ; the team region', 'eu-west-1'],
    ['whitespace then # starts a comment', 'region = eu-west-1\t# the team region', 'eu-west-1'],
    ['quotes are part of the value', 'credential_process = "/opt/my tool/creds" --profile x', '"/opt/my tool/creds" --profile x'],
    ['= inside a value', 'session_tags = Team=blue,Env=dev', 'Team=blue,Env=dev'],
  ];
  it.each(cases)('%s', (_name, line, value) => {
    const key = line.slice(0, line.indexOf('=')).trim();
    const parsed = settingOf(`[profile p]\n${line}\n`, 'p', key);
    expect(parsed).toBe(value);
  });
});

describe('config file structure', () => {
  it('whole-line comments, indented or not, are skipped', () => {
    const file = parseConfigFile('# top\n[profile p]\n; one\n  # two\nregion = eu-west-1\n', '/c');
    expect(file.profiles.get('p')).toEqual({ name: 'p', region: 'eu-west-1' });
  });

  it('a section header may carry a comment', () => {
    expect(settingOf('[profile p] ; mine\nregion = eu-west-1\n', 'p', 'region')).toBe('eu-west-1');
  });

  it('indented lines under an empty-valued key are a sub-section, not profile settings', () => {
    const text = '[profile p]\nregion = eu-west-1\ns3 =\n  region = us-west-2\n  addressing_style = path\nmfa_serial = arn:aws:iam::111111111111:mfa/u\n';
    const profile = parseConfigFile(text, '/c').profiles.get('p')!;
    expect(profile.region).toBe('eu-west-1');
    expect(profile.addressing_style).toBeUndefined();
    expect(profile.mfa_serial).toBe('arn:aws:iam::111111111111:mfa/u');
  });

  it('setting names are case-insensitive, as botocore and aws-vault read them', () => {
    expect(settingOf('[profile p]\nRegion = eu-west-1\n', 'p', 'region')).toBe('eu-west-1');
  });

  it('the last of two equal settings wins', () => {
    expect(settingOf('[profile p]\nregion = eu-west-1\nregion = eu-west-2\n', 'p', 'region')).toBe('eu-west-2');
  });

  it('settings before any section belong to no profile', () => {
    expect([...parseConfigFile('region = eu-west-1\n[profile p]\n', '/c').profiles.keys()]).toEqual(['p']);
  });

  it('CRLF line ends are read like LF', () => {
    expect(settingOf('[profile p]\r\nregion = eu-west-1\r\n', 'p', 'region')).toBe('eu-west-1');
  });
});
