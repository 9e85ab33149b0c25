import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ProfileConfig } from '../config/profileConfig.js';
import { VaultError } from '../errors.js';
import { fromSessionToken } from '../chain/sources/fromSessionToken.js';
import { SdkStsGateway, type StsRequestHandler } from './sdkStsGateway.js';
import { resolveStsTarget } from './stsEndpoint.js';

const KEY = { accessKeyId: 'AKIAENDPOINTTEST0001', secretAccessKey: 'endpoint-test-secret' };

const IDENTITY_XML =
  '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>' +
  '<Arn>arn:aws:iam::111111111111:user/u</Arn><UserId>AIDAENDPOINTTEST</UserId><Account>111111111111</Account>' +
  '</GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>';

/** Answers every request itself and records where the SDK sent it and which region signed it. */
class RecordingHandler implements StsRequestHandler {
  seen: Array<{ url: string; signingRegion: string | undefined }> = [];
  async handle(request: Parameters<StsRequestHandler['handle']>[0]) {
    const authorization = Object.entries(request.headers).find(([name]) => name.toLowerCase() === 'authorization')?.[1] ?? '';
    this.seen.push({
      url: `${request.protocol}//${request.hostname}${request.port ? `:${request.port}` : ''}${request.path}`,
      signingRegion: /Credential=[^/]+\/\d{8}\/([^/]+)\/sts\//.exec(authorization)?.[1],
    });
    return { response: { statusCode: 200, headers: { 'content-type': 'text/xml' }, body: Readable.from([Buffer.from(IDENTITY_XML)]) } };
  }
}

type Profile = Pick<ProfileConfig, 'region' | 'endpointUrl' | 'stsRegionalEndpoints'>;

/** Where the real SDK sends a call for this profile and environment. */
async function sentTo(profile: Profile, env: Record<string, string>) {
  const handler = new RecordingHandler();
  await new SdkStsGateway({ maxAttempts: 1, requestHandler: handler }).getCallerIdentity(KEY, resolveStsTarget(profile, env));
  expect(handler.seen).toHaveLength(1);
  return handler.seen[0]!;
}

describe('STS calls go where the SDK’s own endpoint rules send them', () => {
  const cases: Array<[string, Profile, Record<string, string>, string, string]> = [
    ['us-east-1', { region: 'us-east-1' }, {}, 'https://sts.us-east-1.amazonaws.com/', 'us-east-1'],
    ['us-east-1 when no region anywhere', {}, {}, 'https://sts.us-east-1.amazonaws.com/', 'us-east-1'],
    ['eu-west-1', { region: 'eu-west-1' }, {}, 'https://sts.eu-west-1.amazonaws.com/', 'eu-west-1'],
    ['China (cn-north-1)', { region: 'cn-north-1' }, {}, 'https://sts.cn-north-1.amazonaws.com.cn/', 'cn-north-1'],
    ['GovCloud (us-gov-west-1)', { region: 'us-gov-west-1' }, {}, 'https://sts.us-gov-west-1.amazonaws.com/', 'us-gov-west-1'],
    ['ISO (us-iso-east-1)', { region: 'us-iso-east-1' }, {}, 'https://sts.us-iso-east-1.c2s.ic.gov/', 'us-iso-east-1'],
    ['ISO-B (us-isob-east-1)', { region: 'us-isob-east-1' }, {}, 'https://sts.us-isob-east-1.sc2s.sgov.gov/', 'us-isob-east-1'],
    ['European Sovereign Cloud (eusc-de-east-1)', { region: 'eusc-de-east-1' }, {}, 'https://sts.eusc-de-east-1.amazonaws.eu/', 'eusc-de-east-1'],
    ['FIPS', { region: 'us-east-2' }, { AWS_USE_FIPS_ENDPOINT: 'true' }, 'https://sts-fips.us-east-2.amazonaws.com/', 'us-east-2'],
    ['FIPS in GovCloud is the regular host', { region: 'us-gov-east-1' }, { AWS_USE_FIPS_ENDPOINT: 'true' }, 'https://sts.us-gov-east-1.amazonaws.com/', 'us-gov-east-1'],
    ['dual-stack', { region: 'eu-west-1' }, { AWS_USE_DUALSTACK_ENDPOINT: 'true' }, 'https://sts.eu-west-1.api.aws/', 'eu-west-1'],
    ['dual-stack in China', { region: 'cn-north-1' }, { AWS_USE_DUALSTACK_ENDPOINT: 'true' }, 'https://sts.cn-north-1.api.amazonwebservices.com.cn/', 'cn-north-1'],
    ['FIPS and dual-stack', { region: 'us-east-1' }, { AWS_USE_FIPS_ENDPOINT: 'true', AWS_USE_DUALSTACK_ENDPOINT: 'true' }, 'https://sts-fips.us-east-1.api.aws/', 'us-east-1'],
    ['legacy: the global endpoint, signed for us-east-1', { region: 'eu-west-1', stsRegionalEndpoints: 'legacy' }, {}, 'https://sts.amazonaws.com/', 'us-east-1'],
    ['legacy from AWS_STS_REGIONAL_ENDPOINTS', { region: 'ap-northeast-1' }, { AWS_STS_REGIONAL_ENDPOINTS: 'legacy' }, 'https://sts.amazonaws.com/', 'us-east-1'],
    ['legacy does not apply to newer regions', { region: 'af-south-1', stsRegionalEndpoints: 'legacy' }, {}, 'https://sts.af-south-1.amazonaws.com/', 'af-south-1'],
    ['legacy gives way to FIPS', { region: 'eu-west-1', stsRegionalEndpoints: 'legacy' }, { AWS_USE_FIPS_ENDPOINT: 'true' }, 'https://sts-fips.eu-west-1.amazonaws.com/', 'eu-west-1'],
    ['profile endpoint_url', { region: 'eu-west-1', endpointUrl: 'http://127.0.0.1:9000' }, {}, 'http://127.0.0.1:9000/', 'eu-west-1'],
    ['AWS_ENDPOINT_URL beats endpoint_url', { endpointUrl: 'http://127.0.0.1:9000' }, { AWS_ENDPOINT_URL: 'http://127.0.0.2:9001/' }, 'http://127.0.0.2:9001/', 'us-east-1'],
    ['AWS_ENDPOINT_URL_STS beats AWS_ENDPOINT_URL', {}, { AWS_ENDPOINT_URL: 'http://127.0.0.2:9001', AWS_ENDPOINT_URL_STS: 'http://127.0.0.3:9002' }, 'http://127.0.0.3:9002/', 'us-east-1'],
    ['an explicit endpoint wins over FIPS', { region: 'us-east-2' }, { AWS_ENDPOINT_URL_STS: 'http://127.0.0.3:9002', AWS_USE_FIPS_ENDPOINT: 'true' }, 'http://127.0.0.3:9002/', 'us-east-2'],
    ['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', { region: 'eu-west-1', endpointUrl: 'http://127.0.0.1:9000' }, { AWS_ENDPOINT_URL_STS: 'http://127.0.0.3:9002', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }, 'https://sts.eu-west-1.amazonaws.com/', 'eu-west-1'],
  ];
  it.each(cases)('%s', async (_name, profile, env, url, signingRegion) => {
    expect(await sentTo(profile, env)).toEqual({ url, signingRegion });
  });
});

describe('a failed call names the host the SDK chose', () => {
  it('cannot reach STS at the ISO partition host, not a guessed one', async () => {
    const refused: StsRequestHandler = {
      handle: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
    };
    const gateway = new SdkStsGateway({ maxAttempts: 1, requestHandler: refused });
    const error = await fromSessionToken(gateway, KEY, resolveStsTarget({ region: 'us-iso-east-1' }, {}), {}, 'iso').catch((e: unknown) => e as VaultError);
    expect(error).toBeInstanceOf(VaultError);
    expect(error.code).toBe('STS_UNAVAILABLE');
    expect(error.message).toBe('GetSessionToken for profile iso failed: cannot reach STS at https://sts.us-iso-east-1.c2s.ic.gov (ECONNREFUSED)');
  });
});
