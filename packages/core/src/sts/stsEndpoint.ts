import type { Env } from '../config/paths.js';
import type { ProfileConfig } from '../config/profileConfig.js';
import type { StsTarget } from './stsGateway.js';

/** STS is global; with no region anywhere the SDKs and the AWS CLI sign for us-east-1. */
export const DEFAULT_STS_REGION = 'us-east-1';

/** Regions that `sts_regional_endpoints = legacy` sends to the global endpoint (botocore's list). */
const LEGACY_GLOBAL_REGIONS = new Set([
  'ap-northeast-1', 'ap-south-1', 'ap-southeast-1', 'ap-southeast-2', 'aws-global', 'ca-central-1',
  'eu-central-1', 'eu-north-1', 'eu-west-1', 'eu-west-2', 'eu-west-3', 'sa-east-1', 'us-east-1',
  'us-east-2', 'us-west-1', 'us-west-2',
]);

const isTrue = (value: string | undefined) => value?.toLowerCase() === 'true';

/**
 * Where a profile's STS calls go, resolved as the SDKs do: AWS_ENDPOINT_URL_STS, then
 * AWS_ENDPOINT_URL, then the profile's endpoint_url (unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS),
 * then the partition's regional endpoint (China and FIPS included), or the global one for `legacy`.
 */
export function resolveStsTarget(profile: Pick<ProfileConfig, 'region' | 'endpointUrl' | 'stsRegionalEndpoints'>, env: Env): StsTarget {
  const region = profile.region ?? DEFAULT_STS_REGION;
  const configured = isTrue(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)
    ? undefined
    : env.AWS_ENDPOINT_URL_STS || env.AWS_ENDPOINT_URL || profile.endpointUrl;
  if (configured) return { region, endpoint: configured.replace(/\/+$/, '') };
  const regionalMode = env.AWS_STS_REGIONAL_ENDPOINTS ?? profile.stsRegionalEndpoints ?? 'regional';
  const fips = isTrue(env.AWS_USE_FIPS_ENDPOINT);
  const dualstack = isTrue(env.AWS_USE_DUALSTACK_ENDPOINT);
  if (region.startsWith('cn-')) {
    return { region, endpoint: `https://sts${fips ? '-fips' : ''}.${region}.${dualstack ? 'api.amazonwebservices.com.cn' : 'amazonaws.com.cn'}` };
  }
  if (regionalMode === 'legacy' && !fips && !dualstack && LEGACY_GLOBAL_REGIONS.has(region)) {
    return { region, endpoint: 'https://sts.amazonaws.com' };
  }
  // GovCloud's regular STS endpoints are already FIPS-validated, so there is no sts-fips host there.
  const host = fips && !region.startsWith('us-gov-') ? 'sts-fips' : 'sts';
  return { region, endpoint: `https://${host}.${region}.${dualstack ? 'api.aws' : 'amazonaws.com'}` };
}
