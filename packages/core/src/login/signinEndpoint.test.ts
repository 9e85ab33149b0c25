import { describe, expect, it } from 'vitest';
import { consoleDestination, federationEndpoint, partitionOfRegion } from './signinEndpoint.js';
import { federationName, userNameOfArn } from './federationToken.js';

describe('the sign-in endpoint and console of a region', () => {
  it('each partition signs in at its own host: aws, aws-cn, aws-us-gov', () => {
    expect(federationEndpoint('eu-west-1', {})).toBe('https://signin.aws.amazon.com/federation');
    expect(federationEndpoint(undefined, {})).toBe('https://signin.aws.amazon.com/federation');
    expect(federationEndpoint('cn-north-1', {})).toBe('https://signin.amazonaws.cn/federation');
    expect(federationEndpoint('us-gov-west-1', {})).toBe('https://signin.amazonaws-us-gov.com/federation');
    expect(partitionOfRegion('us-gov-east-1')).toBe('aws-us-gov');
  });

  it('VAULT_SIGNIN_ENDPOINT overrides the federation endpoint', () => {
    expect(federationEndpoint('cn-north-1', { VAULT_SIGNIN_ENDPOINT: 'https://signin.example.internal/federation' })).toBe('https://signin.example.internal/federation');
  });

  it("the destination is the region's console home, or --path under the regional console", () => {
    expect(consoleDestination('eu-west-1', undefined)).toBe('https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1');
    expect(consoleDestination('cn-north-1', 's3/home')).toBe('https://cn-north-1.console.amazonaws.cn/s3/home?region=cn-north-1');
    expect(consoleDestination('us-gov-west-1', '/ec2/home?tab=x')).toBe('https://us-gov-west-1.console.amazonaws-us-gov.com/ec2/home?tab=x&region=us-gov-west-1');
    expect(consoleDestination(undefined, undefined)).toBe('https://console.aws.amazon.com/');
  });
});

describe('the federated user name', () => {
  it('is the IAM user name from the caller ARN, cut to 32 characters', () => {
    expect(userNameOfArn('arn:aws:iam::111111111111:user/team/alice')).toBe('alice');
    expect(userNameOfArn('arn:aws:sts::111111111111:assumed-role/r/s')).toBeUndefined();
    expect(federationName('x'.repeat(40))).toBe('x'.repeat(32));
  });
});
