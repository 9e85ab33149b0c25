/**
 * A stand-in for the ECS / EKS Pod Identity container credentials endpoint
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI): GET returns the task role's credentials as JSON in the
 * shape the SDKs read (AccessKeyId, SecretAccessKey, Token, Expiration), after checking the
 * Authorization header against AWS_CONTAINER_AUTHORIZATION_TOKEN when one is configured.
 */
import { createServer } from 'node:http';
import { formatExpiration } from '@vault/core';
import { closeServer, listenOnLoopback } from './loopbackServer.js';

export interface ContainerCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export interface ContainerCredentialsStandIn {
  /** `http://127.0.0.1:PORT/v2/credentials/task`: what AWS_CONTAINER_CREDENTIALS_FULL_URI names. */
  readonly url: string;
  /** Requests answered, with whether their Authorization header was the configured token. */
  readonly requests: ReadonlyArray<{ path: string; authorized: boolean }>;
  close(): Promise<void>;
}

export async function startContainerCredentialsStandIn(options: { credentials: ContainerCredentials; authorizationToken?: string }): Promise<ContainerCredentialsStandIn> {
  const requests: Array<{ path: string; authorized: boolean }> = [];
  const server = createServer((req, res) => {
    const authorized = options.authorizationToken === undefined || req.headers.authorization === options.authorizationToken;
    requests.push({ path: req.url ?? '/', authorized });
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if (!authorized) {
      const body = JSON.stringify({ code: 'AccessDenied', message: 'Unauthorized' });
      return void res.writeHead(403, { 'Content-Type': 'application/json' }).end(body);
    }
    const c = options.credentials;
    const body = JSON.stringify({
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      Token: c.sessionToken,
      Expiration: formatExpiration(c.expiration),
      RoleArn: 'arn:aws:iam::000000000000:role/task',
    });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
  });
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/v2/credentials/task`,
    requests,
    close: () => closeServer(server),
  };
}
