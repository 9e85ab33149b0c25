import type { Env } from '../config/paths.js';
import type { ProfileConfig } from '../config/profileConfig.js';
import type { StsTarget } from './stsGateway.js';

/** STS is global; with no region anywhere the SDKs and the AWS CLI sign for us-east-1. */
export const DEFAULT_STS_REGION = 'us-east-1';

const isTrue = (value: string | undefined) => value?.toLowerCase() === 'true';

/**
 * What decides where a profile's STS calls go: AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL, then
 * the profile's endpoint_url (none of them under AWS_IGNORE_CONFIGURED_ENDPOINT_URLS) as an
 * explicit URL; otherwise the region with the FIPS, dual-stack and legacy-global switches, which
 * the SDK's own STS endpoint rules turn into a URL (partitions, ISO and sovereign clouds
 * included). Pure and cheap: it loads no SDK, so a cached `exec` never pays for it.
 */
export function resolveStsTarget(profile: Pick<ProfileConfig, 'region' | 'endpointUrl' | 'stsRegionalEndpoints'>, env: Env): StsTarget {
  const region = profile.region ?? DEFAULT_STS_REGION;
  const configured = isTrue(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)
    ? undefined
    : env.AWS_ENDPOINT_URL_STS || env.AWS_ENDPOINT_URL || profile.endpointUrl;
  // A URL the user gave wins outright: the STS ruleset refuses FIPS or dual-stack with one.
  if (configured) return { region, endpoint: configured.replace(/\/+$/, ''), useFipsEndpoint: false, useDualstackEndpoint: false, useGlobalEndpoint: false };
  const regionalMode = env.AWS_STS_REGIONAL_ENDPOINTS ?? profile.stsRegionalEndpoints ?? 'regional';
  return {
    region,
    useFipsEndpoint: isTrue(env.AWS_USE_FIPS_ENDPOINT),
    useDualstackEndpoint: isTrue(env.AWS_USE_DUALSTACK_ENDPOINT),
    useGlobalEndpoint: regionalMode === 'legacy',
  };
}

