import { describe, expect, it } from 'vitest';
import { childEnvironment, mergeNoProxy, SHADOWING_VARIABLES } from '../environment/childEnvironment.js';
import { credentialProcessJson, formatCredentials, shellQuote } from './exportFormats.js';

const creds = {
  accessKeyId: 'ASIAEXAMPLE000000001',
  secretAccessKey: 'secret/with+chars=',
  sessionToken: "tok'en",
  expiration: new Date('2026-01-01T10:00:00.123Z'),
};

describe('the child environment: every variable that beats the endpoint is cleared, AWS_VAULT and the region set (docs/credential-server.md)', () => {
  it('clears every shadowing variable, then sets the credentials, region and AWS_VAULT', () => {
    const base = Object.fromEntries(SHADOWING_VARIABLES.map((n) => [n, 'old'])) as NodeJS.ProcessEnv;
    base.PATH = '/bin';
    const env = childEnvironment(base, creds, 'account-a', 'eu-west-1');
    expect(env).toEqual({
      PATH: '/bin',
      AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
      AWS_SESSION_TOKEN: creds.sessionToken,
      AWS_SECURITY_TOKEN: creds.sessionToken,
      AWS_CREDENTIAL_EXPIRATION: '2026-01-01T10:00:00Z',
      AWS_REGION: 'eu-west-1',
      AWS_DEFAULT_REGION: 'eu-west-1',
      AWS_VAULT: 'account-a',
    });
  });

  it('long-term credentials carry no token or expiry, and no region is invented', () => {
    const env = childEnvironment({}, { accessKeyId: 'AKIA', secretAccessKey: 's' }, 'p', undefined);
    expect(Object.keys(env).sort()).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_VAULT']);
  });

  it("adds the session's NO_PROXY to the user's own instead of replacing it", () => {
    const session = { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:4000/', NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' };
    expect(mergeNoProxy(session, { NO_PROXY: 'corp.example, .internal' })).toEqual({ ...session, NO_PROXY: 'corp.example,.internal,127.0.0.1' });
    expect(mergeNoProxy(session, { no_proxy: 'localhost,127.0.0.1' }).no_proxy).toBe('localhost,127.0.0.1');
    expect(mergeNoProxy(session, {})).toEqual(session);
    expect(mergeNoProxy({ AWS_CONTAINER_AUTHORIZATION_TOKEN: 't' }, { NO_PROXY: 'x' })).toEqual({ AWS_CONTAINER_AUTHORIZATION_TOKEN: 't' });
  });
});

describe('export formats', () => {
  it('json is the credential_process reply: Version 1 and an expiry without milliseconds', () => {
    expect(JSON.parse(credentialProcessJson(creds))).toEqual({
      Version: 1,
      AccessKeyId: creds.accessKeyId,
      SecretAccessKey: creds.secretAccessKey,
      SessionToken: creds.sessionToken,
      Expiration: '2026-01-01T10:00:00Z',
    });
  });

  it('export-env quotes values so eval is safe', () => {
    const text = formatCredentials('export-env', creds, 'p', undefined);
    expect(text).toContain(`export AWS_SESSION_TOKEN='tok'\\''en'\n`);
    expect(text).not.toContain('AWS_VAULT');
  });

  it('ini is a credentials-file section', () => {
    expect(formatCredentials('ini', creds, 'p', 'eu-west-1')).toBe(
      `[p]\naws_access_key_id=${creds.accessKeyId}\naws_secret_access_key=${creds.secretAccessKey}\naws_session_token=${creds.sessionToken}\nregion=eu-west-1\n`,
    );
  });

  it.each([
    ['plain', 'plain'],
    ['with space', "'with space'"],
    ["it's", "'it'\\''s'"],
    ['$(rm -rf /)', "'$(rm -rf /)'"],
  ])('shellQuote(%j)', (input, quoted) => {
    expect(shellQuote(input)).toBe(quoted);
  });
});
