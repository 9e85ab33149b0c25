import { CreateTokenCommand, RegisterClientCommand, SSOOIDCClient, StartDeviceAuthorizationCommand } from '@aws-sdk/client-sso-oidc';
import { GetRoleCredentialsCommand, SSOClient } from '@aws-sdk/client-sso';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@vault/core';
import { startSsoOidcStandIn, type SsoOidcStandIn } from './ssoOidcStandIn.js';
import { startSsoPortalStandIn, ssoRoleArn, type SsoPortalStandIn } from './ssoPortalStandIn.js';
import { startStsStandIn, type StsStandIn } from './stsStandIn.js';

const START_URL = 'https://my-org.awsapps.com/start';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

async function failure(promise: Promise<unknown>): Promise<{ name: string; status?: number; error?: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; error?: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, error: e.error };
  }
  throw new Error('expected the call to fail');
}

describe('SSO OIDC and portal stand-ins, driven by the SDK clients', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  let sts: StsStandIn;
  let oidc: SsoOidcStandIn;
  let portal: SsoPortalStandIn;
  let oidcClient: SSOOIDCClient;
  let ssoClient: SSOClient;
  const fake = { accessKeyId: 'x', secretAccessKey: 'y' };

  beforeAll(async () => {
    sts = await startStsStandIn({ clock });
    oidc = await startSsoOidcStandIn({ clock, deviceCodeSeconds: 600 });
    portal = await startSsoPortalStandIn({ oidc, sts });
    portal.addAssignment('111111111111', 'Developer');
    oidcClient = new SSOOIDCClient({ region: 'eu-west-1', endpoint: oidc.url, credentials: fake });
    ssoClient = new SSOClient({ region: 'eu-west-1', endpoint: portal.url, credentials: fake });
  });
  afterAll(async () => {
    oidcClient.destroy();
    ssoClient.destroy();
    await Promise.all([portal.close(), oidc.close(), sts.close()]);
  });

  async function signIn(scopes?: string[]) {
    const client = await oidcClient.send(new RegisterClientCommand({ clientName: 'test', clientType: 'public', scopes }));
    const device = await oidcClient.send(new StartDeviceAuthorizationCommand({ clientId: client.clientId, clientSecret: client.clientSecret, startUrl: START_URL }));
    return { client, device };
  }

  it('answers authorization_pending until the user code is approved, then slow_down when told, then a token', async () => {
    const { client, device } = await signIn(['sso:account:access']);
    expect(device.interval).toBe(1);
    expect(device.expiresIn).toBe(600);
    expect(device.verificationUriComplete).toContain(device.userCode);
    const poll = () => oidcClient.send(new CreateTokenCommand({ clientId: client.clientId, clientSecret: client.clientSecret, grantType: DEVICE_GRANT, deviceCode: device.deviceCode }));
    expect(await failure(poll())).toEqual({ name: 'AuthorizationPendingException', status: 400, error: 'authorization_pending' });
    oidc.slowDown(1);
    expect(await failure(poll())).toMatchObject({ name: 'SlowDownException', error: 'slow_down' });
    expect(oidc.approve(device.userCode!)).toBe(true);
    const token = await poll();
    expect(token.accessToken).toMatch(/^accesstoken-/);
    expect(token.refreshToken).toMatch(/^refreshtoken-/);
    expect(token.expiresIn).toBe(3600);
    // A device code serves one sign-in.
    expect(await failure(poll())).toMatchObject({ name: 'InvalidGrantException' });
  });

  it('says expired_token for a device code nobody approved in time', async () => {
    const { client, device } = await signIn();
    clock.advance(600_000);
    const error = await failure(oidcClient.send(new CreateTokenCommand({ clientId: client.clientId, clientSecret: client.clientSecret, grantType: DEVICE_GRANT, deviceCode: device.deviceCode })));
    expect(error).toMatchObject({ name: 'ExpiredTokenException', error: 'expired_token' });
    expect(oidc.approve(device.userCode!)).toBe(false);
  });

  it('gives no refresh token to a registration without scopes (the legacy form)', async () => {
    const { client, device } = await signIn();
    oidc.approve(device.userCode!);
    const token = await oidcClient.send(new CreateTokenCommand({ clientId: client.clientId, clientSecret: client.clientSecret, grantType: DEVICE_GRANT, deviceCode: device.deviceCode }));
    expect(token.refreshToken).toBeUndefined();
  });

  it('refreshes with a refresh token once (they rotate), and not at all once revoked', async () => {
    const { client, device } = await signIn(['sso:account:access']);
    oidc.approve(device.userCode!);
    const first = await oidcClient.send(new CreateTokenCommand({ clientId: client.clientId, clientSecret: client.clientSecret, grantType: DEVICE_GRANT, deviceCode: device.deviceCode }));
    const refresh = (refreshToken: string) =>
      oidcClient.send(new CreateTokenCommand({ clientId: client.clientId, clientSecret: client.clientSecret, grantType: 'refresh_token', refreshToken }));
    const second = await refresh(first.refreshToken!);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(await failure(refresh(first.refreshToken!))).toMatchObject({ name: 'InvalidGrantException' });
    oidc.revokeRefreshTokens();
    expect(await failure(refresh(second.refreshToken!))).toMatchObject({ name: 'InvalidGrantException', error: 'invalid_grant' });
  });

  it('hands out role credentials that STS knows, 401 for a bad or expired token, 403 for no assignment', async () => {
    const { client, device } = await signIn();
    oidc.approve(device.userCode!);
    const { accessToken } = await oidcClient.send(new CreateTokenCommand({ clientId: client.clientId, clientSecret: client.clientSecret, grantType: DEVICE_GRANT, deviceCode: device.deviceCode }));
    const get = (token: string, accountId = '111111111111', roleName = 'Developer') => ssoClient.send(new GetRoleCredentialsCommand({ accessToken: token, accountId, roleName }));
    const { roleCredentials } = await get(accessToken!);
    expect(roleCredentials?.expiration).toBe(clock.now() + 3600_000);
    const caller = await new STSClient({ region: 'eu-west-1', endpoint: sts.url, credentials: { accessKeyId: roleCredentials!.accessKeyId!, secretAccessKey: roleCredentials!.secretAccessKey!, sessionToken: roleCredentials!.sessionToken! } }).send(new GetCallerIdentityCommand({}));
    expect(caller.Arn).toBe(`arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Developer_0123456789abcdef/jane.doe`);
    expect(ssoRoleArn('111111111111', 'Developer')).toContain('aws-reserved/sso.amazonaws.com');
    expect(await failure(get('not-a-token'))).toEqual({ name: 'UnauthorizedException', status: 401, error: undefined });
    expect(await failure(get(accessToken!, '222222222222'))).toMatchObject({ name: 'ForbiddenException', status: 403 });
    clock.advance(3600_000);
    expect(await failure(get(accessToken!))).toMatchObject({ name: 'UnauthorizedException' });
  });
});
