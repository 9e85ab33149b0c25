import { describe, expect, it } from 'vitest';
import { resolveStsTarget } from './stsEndpoint.js';

describe('STS endpoint resolution follows the SDKs', () => {
  const cases: Array<[string, { region?: string; endpointUrl?: string; stsRegionalEndpoints?: 'regional' | 'legacy' }, Record<string, string>, string, string]> = [
    ['regional by default', { region: 'eu-west-1' }, {}, 'eu-west-1', 'https://sts.eu-west-1.amazonaws.com'],
    ['us-east-1 when no region anywhere', {}, {}, 'us-east-1', 'https://sts.us-east-1.amazonaws.com'],
    ['China partition', { region: 'cn-north-1' }, {}, 'cn-north-1', 'https://sts.cn-north-1.amazonaws.com.cn'],
    ['GovCloud', { region: 'us-gov-west-1' }, {}, 'us-gov-west-1', 'https://sts.us-gov-west-1.amazonaws.com'],
    ['FIPS', { region: 'us-east-2' }, { AWS_USE_FIPS_ENDPOINT: 'true' }, 'us-east-2', 'https://sts-fips.us-east-2.amazonaws.com'],
    ['FIPS in GovCloud stays sts.', { region: 'us-gov-east-1' }, { AWS_USE_FIPS_ENDPOINT: 'true' }, 'us-gov-east-1', 'https://sts.us-gov-east-1.amazonaws.com'],
    ['legacy global endpoint', { region: 'eu-west-1', stsRegionalEndpoints: 'legacy' }, {}, 'eu-west-1', 'https://sts.amazonaws.com'],
    ['legacy does not apply to newer regions', { region: 'af-south-1', stsRegionalEndpoints: 'legacy' }, {}, 'af-south-1', 'https://sts.af-south-1.amazonaws.com'],
    ['profile endpoint_url', { region: 'eu-west-1', endpointUrl: 'http://127.0.0.1:9000' }, {}, 'eu-west-1', 'http://127.0.0.1:9000'],
    ['AWS_ENDPOINT_URL beats endpoint_url', { endpointUrl: 'http://a' }, { AWS_ENDPOINT_URL: 'http://b/' }, 'us-east-1', 'http://b'],
    ['AWS_ENDPOINT_URL_STS beats AWS_ENDPOINT_URL', {}, { AWS_ENDPOINT_URL: 'http://b', AWS_ENDPOINT_URL_STS: 'http://c' }, 'us-east-1', 'http://c'],
    ['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', { region: 'eu-west-1', endpointUrl: 'http://a' }, { AWS_ENDPOINT_URL_STS: 'http://c', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }, 'eu-west-1', 'https://sts.eu-west-1.amazonaws.com'],
  ];
  it.each(cases)('%s', (_name, profile, env, region, endpoint) => {
    expect(resolveStsTarget(profile, env)).toEqual({ region, endpoint });
  });
});
