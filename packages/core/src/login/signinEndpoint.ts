import type { Env } from '../config/paths.js';

/**
 * The sign-in federation endpoint and console of a region's partition, as aws-vault chooses them:
 * `cn-*` regions are in aws-cn, `us-gov-*` in aws-us-gov, everything else in aws.
 */
const PARTITIONS = {
  aws: { federation: 'https://signin.aws.amazon.com/federation', console: 'console.aws.amazon.com' },
  'aws-cn': { federation: 'https://signin.amazonaws.cn/federation', console: 'console.amazonaws.cn' },
  'aws-us-gov': { federation: 'https://signin.amazonaws-us-gov.com/federation', console: 'console.amazonaws-us-gov.com' },
} as const;

export type SigninPartition = keyof typeof PARTITIONS;

export function partitionOfRegion(region: string | undefined): SigninPartition {
  if (region?.startsWith('cn-')) return 'aws-cn';
  if (region?.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The federation endpoint for a region: VAULT_SIGNIN_ENDPOINT when set (tests, private partitions). */
export function federationEndpoint(region: string | undefined, env: Env): string {
  const override = env.VAULT_SIGNIN_ENDPOINT?.trim();
  if (override) return override;
  return PARTITIONS[partitionOfRegion(region)].federation;
}

/**
 * Where the console opens: with a region, that region's console home (or `path` under the
 * regional console host, as aws-vault's --path); without one, the partition's console root.
 */
export function consoleDestination(region: string | undefined, path: string | undefined): string {
  const host = PARTITIONS[partitionOfRegion(region)].console;
  const under = path?.replace(/^\/+/, '');
  if (!region) return under ? `https://${host}/${under}` : `https://${host}/`;
  const query = `region=${encodeURIComponent(region)}`;
  if (under) return `https://${region}.${host}/${under}${under.includes('?') ? '&' : '?'}${query}`;
  return `https://${region}.${host}/console/home?${query}`;
}
