import { AssumeRoleCommand, GetFederationTokenCommand, GetSessionTokenCommand, STSClient } from '@aws-sdk/client-sts';
import { ManualClock } from '@vault/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFederationStandIn, type FederationStandIn } from './federationStandIn.js';
import { startStsStandIn, type StsStandIn } from './stsStandIn.js';

type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
const ROLE = 'arn:aws:iam::222222222222:role/console';

describe('the federation stand-in checks the Session as the sign-in service does', () => {
  let sts: StsStandIn;
  let federation: FederationStandIn;
  let user: Creds;
  const clock = new ManualClock(Date.now());
  const client = (credentials: Creds) => new STSClient({ region: 'us-east-1', endpoint: sts.url, credentials, maxAttempts: 1 });
  const temp = (c: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string } | undefined): Creds => ({
    accessKeyId: c!.AccessKeyId!,
    secretAccessKey: c!.SecretAccessKey!,
    sessionToken: c!.SessionToken!,
  });
  const getSigninToken = (session: unknown, duration?: number) => {
    const url = new URL(federation.url);
    url.searchParams.set('Action', 'getSigninToken');
    url.searchParams.set('Session', typeof session === 'string' ? session : JSON.stringify(session));
    if (duration !== undefined) url.searchParams.set('SessionDuration', String(duration));
    return fetch(url);
  };
  const asSession = (c: Creds) => ({ sessionId: c.accessKeyId, sessionKey: c.secretAccessKey, sessionToken: c.sessionToken });

  beforeAll(async () => {
    sts = await startStsStandIn({ clock });
    federation = await startFederationStandIn(sts, { clock });
    user = sts.addUser({ arn: 'arn:aws:iam::111111111111:user/alice' });
    sts.addRole({ arn: ROLE });
  });

  afterAll(async () => {
    await federation.close();
    await sts.close();
  });

  it('role credentials with a SessionDuration get a token that logs in once redirected, for 15 minutes', async () => {
    const role = temp((await client(user).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 's1' }))).Credentials);
    const answer = await getSigninToken(asSession(role), 3600);
    expect(answer.status).toBe(200);
    const { SigninToken } = (await answer.json()) as { SigninToken: string };
    const login = new URL(federation.url);
    login.search = new URLSearchParams({ Action: 'login', Issuer: 'x', Destination: 'https://console.aws.amazon.com/', SigninToken }).toString();
    expect((await fetch(login, { redirect: 'manual' })).status).toBe(302);
    clock.advance(15 * 60_000 + 1);
    expect((await fetch(login, { redirect: 'manual' })).status).toBe(400);
  });

  it('refuses GetSessionToken credentials, a long-term key, a wrong secret, extra keys, and SessionDuration with federation credentials', async () => {
    const session = temp((await client(user).send(new GetSessionTokenCommand({}))).Credentials);
    const federated = temp((await client(user).send(new GetFederationTokenCommand({ Name: 'alice' }))).Credentials);
    expect((await getSigninToken(asSession(session))).status).toBe(400);
    expect((await getSigninToken({ sessionId: user.accessKeyId, sessionKey: user.secretAccessKey, sessionToken: '' })).status).toBe(400);
    expect((await getSigninToken({ ...asSession(federated), sessionKey: 'wrong' })).status).toBe(400);
    expect((await getSigninToken({ ...asSession(federated), extra: 'x' })).status).toBe(400);
    expect((await getSigninToken('not json')).status).toBe(400);
    expect((await getSigninToken(asSession(federated), 3600)).status).toBe(400);
    expect((await getSigninToken(asSession(federated))).status).toBe(200);
    expect(federation.calls.filter((c) => !c.ok).map((c) => c.reason)).toEqual(
      expect.arrayContaining(['GetSessionToken credentials cannot sign in to the console', 'SessionDuration cannot be used with GetFederationToken credentials']),
    );
  });

  it('GetFederationToken: only with a long-term key, a Name of 2–32 characters', async () => {
    const session = temp((await client(user).send(new GetSessionTokenCommand({}))).Credentials);
    await expect(client(session).send(new GetFederationTokenCommand({ Name: 'alice' }))).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(client(user).send(new GetFederationTokenCommand({ Name: 'x'.repeat(33) }))).rejects.toMatchObject({ name: 'ValidationError' });
    const out = await client(user).send(new GetFederationTokenCommand({ Name: 'alice', DurationSeconds: 900 }));
    expect(out.FederatedUser?.Arn).toBe('arn:aws:sts::111111111111:federated-user/alice');
  });
});
