import type { Credentials } from '../credentials.js';
import { quietly } from '../sts/sdkStsGateway.js';
import type { AccessKey, IamGateway, IamTarget } from './iamGateway.js';

type IamModule = typeof import('@aws-sdk/client-iam');

let sdk: Promise<IamModule> | undefined;
/** @aws-sdk/client-iam is loaded by `vault rotate` only: no other command pays for it. */
function loadSdk(): Promise<IamModule> {
  sdk ??= import('@aws-sdk/client-iam');
  return sdk;
}

/** The one place that touches @aws-sdk/client-iam. */
export class SdkIamGateway implements IamGateway {
  private async client(credentials: Credentials, target: IamTarget) {
    const mod = await loadSdk();
    // The SDK's Node-version notice is about our runtime, not the user's command (see quietly).
    const client = quietly(() => new mod.IAMClient({
      region: target.region,
      endpoint: target.endpoint,
      // vault has read AWS_ENDPOINT_URL_IAM and endpoint_url for this profile already.
      ignoreConfiguredEndpointUrls: true,
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken },
      maxAttempts: 3,
      requestHandler: { requestTimeout: 10_000, throwOnRequestTimeout: true },
    }));
    return { client, mod };
  }

  async getUser(credentials: Credentials, target: IamTarget): Promise<{ userName: string; arn: string }> {
    const { client, mod } = await this.client(credentials, target);
    try {
      const out = await client.send(new mod.GetUserCommand({}));
      return { userName: out.User?.UserName ?? '', arn: out.User?.Arn ?? '' };
    } finally {
      client.destroy();
    }
  }

  async createAccessKey(credentials: Credentials, target: IamTarget, userName: string): Promise<AccessKey> {
    const { client, mod } = await this.client(credentials, target);
    try {
      const out = await client.send(new mod.CreateAccessKeyCommand({ UserName: userName }));
      const key = out.AccessKey;
      if (!key?.AccessKeyId || !key.SecretAccessKey) throw Object.assign(new Error('IAM returned a reply without a complete access key'), { name: 'MalformedResponse' });
      return { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
    } finally {
      client.destroy();
    }
  }

  async deleteAccessKey(credentials: Credentials, target: IamTarget, userName: string, accessKeyId: string): Promise<void> {
    const { client, mod } = await this.client(credentials, target);
    try {
      await client.send(new mod.DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: accessKeyId }));
    } finally {
      client.destroy();
    }
  }
}
