/** AWS credentials as vault passes them around in memory. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Absent for long-term IAM user keys. */
  expiration?: Date;
}

/** Temporary credentials from STS: always expire. */
export interface TemporaryCredentials extends Credentials {
  sessionToken: string;
  expiration: Date;
}

/** An assumed role also tells who we became. */
export interface AssumedRoleCredentials extends TemporaryCredentials {
  assumedRoleArn?: string;
}

export type CredentialProvider = () => Promise<Credentials>;

/** Milliseconds of life left at `now`; Infinity for credentials that never expire. */
export function remainingMs(credentials: Credentials, now: number): number {
  return credentials.expiration ? credentials.expiration.getTime() - now : Number.POSITIVE_INFINITY;
}

/**
 * AWS and the SDKs print expirations as `YYYY-MM-DDTHH:MM:SSZ`: the JS `fromHttp` parser needs the
 * `Z`, and botocore's IMDS check fails on fractional seconds, so milliseconds are dropped.
 */
export function formatExpiration(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Every secret value a set of credentials carries, for redaction and leak scans. */
export function secretValues(credentials: Credentials): string[] {
  const values = [credentials.secretAccessKey];
  if (credentials.sessionToken) values.push(credentials.sessionToken);
  return values;
}
