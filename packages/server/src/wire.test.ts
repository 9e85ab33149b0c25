import { describe, expect, it } from 'vitest';
import {
  accountIdOf,
  errorBody,
  fromEcsCredentialsBody,
  isEcsCredentialsBody,
  serializeEcsCredentials,
  serializeImdsCredentials,
  toEcsCredentialsBody,
  toImdsCredentialsBody,
} from './wire.js';

const credentials = {
  accessKeyId: 'ASIAEXAMPLE',
  secretAccessKey: 'secret',
  sessionToken: 'token',
  expiration: new Date('2026-03-04T05:06:07.891Z'),
};

describe('wire formats', () => {
  it('ECS JSON: AccessKeyId, SecretAccessKey, Token, Expiration without milliseconds', () => {
    expect(toEcsCredentialsBody(credentials)).toEqual({
      AccessKeyId: 'ASIAEXAMPLE',
      SecretAccessKey: 'secret',
      Token: 'token',
      Expiration: '2026-03-04T05:06:07Z',
    });
  });

  it('ECS JSON adds AccountId when the credentials name their assumed role', () => {
    const body = toEcsCredentialsBody({ ...credentials, assumedRoleArn: 'arn:aws:sts::123456789012:assumed-role/r/s' });
    expect(body.AccountId).toBe('123456789012');
    expect(accountIdOf({ ...credentials, assumedRoleArn: 'arn:aws-us-gov:sts::210987654321:assumed-role/r/s' })).toBe('210987654321');
    expect(accountIdOf(credentials)).toBeUndefined();
  });

  it('IMDS JSON: Code Success, LastUpdated, Type AWS-HMAC, then the credentials', () => {
    const body = toImdsCredentialsBody(credentials, new Date('2026-03-04T04:06:07.5Z'));
    expect(body).toEqual({
      Code: 'Success',
      LastUpdated: '2026-03-04T04:06:07Z',
      Type: 'AWS-HMAC',
      AccessKeyId: 'ASIAEXAMPLE',
      SecretAccessKey: 'secret',
      Token: 'token',
      Expiration: '2026-03-04T05:06:07Z',
    });
  });

  it('prepared bytes are the JSON of the bodies', () => {
    expect(JSON.parse(serializeEcsCredentials(credentials).toString())).toEqual(toEcsCredentialsBody(credentials));
    const at = new Date(0);
    expect(JSON.parse(serializeImdsCredentials(credentials, at).toString())).toEqual(toImdsCredentialsBody(credentials, at));
  });

  it('errors are {Code, Message}, with Hint only when there is one', () => {
    expect(errorBody('ACCESS_DENIED', 'no')).toEqual({ Code: 'ACCESS_DENIED', Message: 'no' });
    expect(errorBody('SESSION_NOT_FOUND', 'gone', 'run x')).toEqual({ Code: 'SESSION_NOT_FOUND', Message: 'gone', Hint: 'run x' });
  });

  it('the guard accepts what we send and rejects what strict SDKs would', () => {
    const body = toEcsCredentialsBody(credentials);
    expect(isEcsCredentialsBody(body)).toBe(true);
    expect(isEcsCredentialsBody({ ...body, Expiration: '2026-03-04T05:06:07.891Z' })).toBe(false);
    expect(isEcsCredentialsBody({ ...body, Expiration: '2026-03-04T05:06:07+00:00' })).toBe(false);
    const { Expiration: _e, ...noExpiration } = body;
    expect(isEcsCredentialsBody(noExpiration)).toBe(false);
    expect(isEcsCredentialsBody(null)).toBe(false);
    expect(fromEcsCredentialsBody(body)).toEqual({ ...credentials, expiration: new Date('2026-03-04T05:06:07Z') });
  });
});
