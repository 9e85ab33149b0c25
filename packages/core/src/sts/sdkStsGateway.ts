import type { STSClient } from '@aws-sdk/client-sts';
import type { AssumedRoleCredentials, Credentials, TemporaryCredentials } from '../credentials.js';
import type { AssumeRoleInput, AssumeRoleWithWebIdentityInput, CallerIdentity, GetSessionTokenInput, StsGateway, StsTarget } from './stsGateway.js';
import { noteStsEndpoint } from './stsErrors.js';

type StsModule = typeof import('@aws-sdk/client-sts');

let sdk: Promise<StsModule> | undefined;
/** The SDK is loaded on the first real STS call only: a cached `exec` never pays for it. */
function loadSdk(): Promise<StsModule> {
  sdk ??= import('@aws-sdk/client-sts');
  return sdk;
}

export interface SdkStsGatewayOptions {
  /** SDK attempts per call (the SDK's own retry with backoff on throttling and 5xx). */
  maxAttempts?: number;
  /** Per-request timeout in ms. */
  requestTimeoutMs?: number;
  /** Sends the signed requests instead of node's HTTP handler: tests see where each call goes. */
  requestHandler?: StsRequestHandler;
}

/** The part of the SDK's HTTP handler interface a test stand-in implements. */
export interface StsRequestHandler {
  handle(request: { protocol: string; hostname: string; port?: number; path: string; headers: Record<string, string> }): Promise<{
    response: { statusCode: number; headers: Record<string, string>; body: unknown };
  }>;
}

const SDK_NODE_WARNING = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * The SDK prints a Node-version notice on the first client it builds. It is about our runtime, not
 * the user's command, so it must not land in their terminal; the variable is set only while the
 * client is built (synchronously), so it never reaches a child process's environment.
 */
export function quietly<T>(build: () => T): T {
  if (process.env[SDK_NODE_WARNING] !== undefined) return build();
  process.env[SDK_NODE_WARNING] = 'true';
  try {
    return build();
  } finally {
    delete process.env[SDK_NODE_WARNING];
  }
}

/**
 * The STS client settings for a target. The URL is left to the SDK's own STS endpoint rules
 * (partition, FIPS, dual-stack, legacy global endpoint) unless the user named one. vault has
 * already read AWS_ENDPOINT_URL* and endpoint_url for *this* profile, so the SDK must not look
 * them up again in the environment or under AWS_PROFILE's section of the shared config.
 */
export function stsClientConfig(target: StsTarget) {
  return {
    region: target.region,
    endpoint: target.endpoint,
    useFipsEndpoint: target.useFipsEndpoint,
    useDualstackEndpoint: target.useDualstackEndpoint,
    useGlobalEndpoint: target.useGlobalEndpoint,
    ignoreConfiguredEndpointUrls: true,
  };
}

interface Call {
  client: STSClient;
  sdk: StsModule;
  /** Tags a failure with the URL the request went to (for the one-line message). */
  failed: (error: unknown) => unknown;
}

/** The one place that touches @aws-sdk/client-sts. */
export class SdkStsGateway implements StsGateway {
  constructor(private readonly options: SdkStsGatewayOptions = {}) {}

  /** `credentials` undefined: an unsigned client (the SDK sends AssumeRoleWithWebIdentity with no auth). */
  private async client(credentials: Credentials | undefined, target: StsTarget): Promise<Call> {
    const mod = await loadSdk();
    const client = quietly(() => new mod.STSClient({
      ...stsClientConfig(target),
      // Unsigned calls still get an explicit (empty) identity, so the SDK never goes looking for
      // credentials of its own in the environment or ~/.aws.
      credentials: credentials
        ? { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken }
        : async () => ({ accessKeyId: '', secretAccessKey: '' }),
      maxAttempts: this.options.maxAttempts ?? 3,
      // Without throwOnRequestTimeout the SDK only warns when the timeout passes and keeps waiting.
      requestHandler: this.options.requestHandler ?? { requestTimeout: this.options.requestTimeoutMs ?? 10_000, throwOnRequestTimeout: true },
    }));
    let url = target.endpoint;
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { protocol?: string; hostname?: string; port?: number } | undefined;
        if (request?.hostname) url = `${request.protocol ?? 'https:'}//${request.hostname}${request.port ? `:${request.port}` : ''}`;
        return next(args);
      },
      { step: 'build', name: 'vaultRecordStsEndpoint' },
    );
    return { client, sdk: mod, failed: (error) => (url ? noteStsEndpoint(error, url) : error) };
  }

  /** One STS call on a client of its own: a failure names the URL it went to; the client is always destroyed. */
  private async call<T>(credentials: Credentials | undefined, target: StsTarget, send: (client: STSClient, sdk: StsModule) => Promise<T>): Promise<T> {
    const { client, sdk: mod, failed } = await this.client(credentials, target);
    try {
      return await send(client, mod);
    } catch (error) {
      throw failed(error);
    } finally {
      client.destroy();
    }
  }

  getSessionToken(credentials: Credentials, target: StsTarget, input: GetSessionTokenInput): Promise<TemporaryCredentials> {
    return this.call(credentials, target, async (client, mod) => {
      const out = await client.send(
        new mod.GetSessionTokenCommand({
          DurationSeconds: input.durationSeconds,
          SerialNumber: input.serialNumber,
          TokenCode: input.tokenCode,
        }),
      );
      return toTemporary(out.Credentials);
    });
  }

  assumeRole(credentials: Credentials, target: StsTarget, input: AssumeRoleInput): Promise<AssumedRoleCredentials> {
    return this.call(credentials, target, async (client, mod) => {
      const out = await client.send(
        new mod.AssumeRoleCommand({
          RoleArn: input.roleArn,
          RoleSessionName: input.roleSessionName,
          DurationSeconds: input.durationSeconds,
          ExternalId: input.externalId,
          SerialNumber: input.serialNumber,
          TokenCode: input.tokenCode,
          Tags: input.tags?.length ? input.tags.map((t) => ({ Key: t.key, Value: t.value })) : undefined,
          TransitiveTagKeys: input.transitiveTagKeys?.length ? input.transitiveTagKeys : undefined,
          SourceIdentity: input.sourceIdentity,
        }),
      );
      return { ...toTemporary(out.Credentials), assumedRoleArn: out.AssumedRoleUser?.Arn };
    });
  }

  assumeRoleWithWebIdentity(target: StsTarget, input: AssumeRoleWithWebIdentityInput): Promise<AssumedRoleCredentials> {
    return this.call(undefined, target, async (client, mod) => {
      const out = await client.send(
        new mod.AssumeRoleWithWebIdentityCommand({
          RoleArn: input.roleArn,
          RoleSessionName: input.roleSessionName,
          WebIdentityToken: input.webIdentityToken,
          DurationSeconds: input.durationSeconds,
        }),
      );
      return { ...toTemporary(out.Credentials), assumedRoleArn: out.AssumedRoleUser?.Arn };
    });
  }

  getCallerIdentity(credentials: Credentials, target: StsTarget): Promise<CallerIdentity> {
    return this.call(credentials, target, async (client, mod) => {
      const out = await client.send(new mod.GetCallerIdentityCommand({}));
      return { account: out.Account ?? '', arn: out.Arn ?? '', userId: out.UserId ?? '' };
    });
  }
}

function toTemporary(c: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string; Expiration?: Date } | undefined): TemporaryCredentials {
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
    throw Object.assign(new Error('STS returned a reply without complete credentials'), { name: 'MalformedResponse' });
  }
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
}
