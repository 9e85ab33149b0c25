// Prints the ARN the container's credentials belong to (the SDK default chain finds the endpoint).
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';

const out = await new STSClient({}).send(new GetCallerIdentityCommand({}));
console.log(out.Arn);
