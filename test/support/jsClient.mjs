// Resolves credentials with one JS SDK v3 provider (named in argv[2]), then asks the STS stand-in
// (argv[3]) who they belong to. Prints the ARN and the credentials' expiry, nothing secret.
import { fromContainerMetadata, fromHttp, fromInstanceMetadata, fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';

// The SDK's notice about Node 20 support is about the test machine, not about vault; keep stderr
// for what the providers say.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const providers = {
  fromContainerMetadata: () => fromContainerMetadata({ timeout: 2000, maxRetries: 1 }),
  fromHttp: () => fromHttp({}),
  fromInstanceMetadata: () => fromInstanceMetadata({ timeout: 2000, maxRetries: 1 }),
  fromNodeProviderChain: () => fromNodeProviderChain(),
};
const [name, endpoint] = process.argv.slice(2);
const provider = providers[name]();
const credentials = await provider();
const client = new STSClient({ region: process.env.AWS_REGION ?? 'us-east-1', endpoint, credentials });
const out = await client.send(new GetCallerIdentityCommand({}));
console.log(JSON.stringify({ arn: out.Arn, expiration: credentials.expiration?.toISOString() }));
