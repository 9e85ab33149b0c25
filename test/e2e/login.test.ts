import { appendFileSync, chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startFederationStandIn, type FederationStandIn } from '@vault/stand-ins';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLeaks } from '../support/leaks.js';
import { ROLE_A, World } from '../support/world.js';

const ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}';
const LONG_USER = 'a-user-whose-name-is-longer-than-thirty-two-characters';
const assumedRolePrefix = ROLE_A.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/');

/** The parameters of a URL, in order, as [name, value] pairs. */
function paramsOf(url: URL): Array<[string, string]> {
  return [...url.searchParams.entries()];
}

describe('vault login: the console sign-in URL through the federation endpoint', { timeout: 90_000 }, () => {
  let world: World;
  let federation: FederationStandIn;
  let longUserKey = { accessKeyId: '', secretAccessKey: '' };
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    world = await World.create('file');
    federation = await startFederationStandIn(world.sts);
    longUserKey = world.sts.addUser({ arn: `arn:aws:iam::111111111111:user/${LONG_USER}` });
    appendFileSync(join(world.home, '.aws', 'config'), '\n[profile long-user]\nregion = eu-west-1\n');
    env = { VAULT_SIGNIN_ENDPOINT: federation.url };
    expect((await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey })).code).toBe(0);
    expect((await world.vault(['add', '--env', 'long-user'], { AWS_ACCESS_KEY_ID: longUserKey.accessKeyId, AWS_SECRET_ACCESS_KEY: longUserKey.secretAccessKey })).code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    if (!world) return;
    await world.vault(['server', 'stop']);
    expect(world.leaks()).toEqual([]);
    expect(findLeaks([longUserKey.secretAccessKey], world.captured, [world.home])).toEqual([]);
    // Sign-in tokens are printed by --stdout (the product) and nowhere else: no file under HOME holds one.
    expect(findLeaks(federation.issuedTokens(), {}, [world.home])).toEqual([]);
    await federation.close();
    await world.close();
  });

  it('a role profile: --stdout prints one Action=login URL whose every parameter is right, and the token it carries opens the console', async () => {
    world.sts.resetCalls();
    federation.resetCalls();
    const result = await world.vault(['login', '--stdout', '-t', '123456', 'account-a'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    const url = new URL(lines[0]!);
    expect(`${url.origin}${url.pathname}`).toBe(federation.url);
    const params = paramsOf(url);
    expect(params.map(([name]) => name)).toEqual(['Action', 'Issuer', 'Destination', 'SigninToken']);
    expect(url.searchParams.get('Action')).toBe('login');
    expect(url.searchParams.get('Issuer')).toBe('vault');
    expect(url.searchParams.get('Destination')).toBe('https://ap-northeast-1.console.aws.amazon.com/console/home?region=ap-northeast-1');
    expect(federation.issuedTokens()).toContain(url.searchParams.get('SigninToken'));

    // The token came from the role's credentials, sent as the Session JSON with a SessionDuration.
    const [tokenCall] = federation.calls;
    expect(tokenCall).toMatchObject({ action: 'getSigninToken', ok: true, sessionKeys: ['sessionId', 'sessionKey', 'sessionToken'] });
    expect(tokenCall!.principalArn).toMatch(new RegExp(`^${assumedRolePrefix}/`));
    expect(tokenCall!.sessionDuration).toBeGreaterThan(3_500);
    expect(tokenCall!.sessionDuration).toBeLessThanOrEqual(3_600);
    expect(world.sts.count('GetSessionToken')).toBe(1);
    expect(world.sts.count('AssumeRole')).toBe(1);
    expect(world.sts.count('GetFederationToken')).toBe(0);

    const opened = await fetch(url, { redirect: 'manual' });
    expect(opened.status).toBe(302);
    expect(opened.headers.get('location')).toBe('https://ap-northeast-1.console.aws.amazon.com/console/home?region=ap-northeast-1');
  });

  it('--path and --region choose the console page and region; -d sets the console session length', async () => {
    federation.resetCalls();
    const result = await world.vault(['login', '--stdout', '--path', 's3/home', '--region', 'eu-west-1', '-d', '20m', 'account-a'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const url = new URL(result.stdout.trim());
    expect(url.searchParams.get('Destination')).toBe('https://eu-west-1.console.aws.amazon.com/s3/home?region=eu-west-1');
    const [tokenCall] = federation.calls;
    expect(tokenCall!.sessionDuration).toBeGreaterThan(1_100);
    expect(tokenCall!.sessionDuration).toBeLessThanOrEqual(1_200);
  });

  it('a bare IAM user: GetFederationToken named after the user with the allow-all policy, and no long-term key in the URL', async () => {
    world.sts.resetCalls();
    federation.resetCalls();
    const result = await world.vault(['login', '--stdout', 'central-account'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const calls = world.sts.calls.filter((c) => c.action === 'GetFederationToken');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ ok: true, accessKeyId: world.user.accessKeyId, federatedName: 'central-user', policy: ALLOW_ALL, durationSeconds: 43_200 });
    expect(world.sts.count('GetSessionToken')).toBe(0);
    const [tokenCall] = federation.calls;
    expect(tokenCall).toMatchObject({ ok: true, principalArn: 'arn:aws:sts::111111111111:federated-user/central-user' });
    expect(tokenCall!.sessionDuration).toBeUndefined();
    expect(result.stdout).not.toContain(world.user.accessKeyId);
    expect(new URL(result.stdout.trim()).searchParams.get('Destination')).toBe('https://ap-northeast-1.console.aws.amazon.com/console/home?region=ap-northeast-1');
  });

  it('AWS_FEDERATION_TOKEN_TTL sets the federation token life; a user name past 32 characters is cut to 32', async () => {
    world.sts.resetCalls();
    const result = await world.vault(['login', '--stdout', 'long-user'], { ...env, AWS_FEDERATION_TOKEN_TTL: '2h' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const [call] = world.sts.calls.filter((c) => c.action === 'GetFederationToken');
    expect(call).toMatchObject({ ok: true, federatedName: LONG_USER.slice(0, 32), durationSeconds: 7_200 });
  });

  it('takes the profile from AWS_PROFILE when none is given', async () => {
    federation.resetCalls();
    const result = await world.vault(['login', '--stdout'], { ...env, AWS_PROFILE: 'account-a' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(federation.calls[0]!.principalArn).toMatch(new RegExp(`^${assumedRolePrefix}/`));
  });

  it('without a profile or AWS_PROFILE: one usage line', async () => {
    const result = await world.vault(['login', '--stdout'], env);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('vault: vault login needs a profile; name it (`vault login PROFILE`) or set AWS_PROFILE\n');
    expect(result.code).toBe(2);
  });

  it('without --stdout the URL goes to the browser (BROWSER, through the opener), never to stdout or the debug log', async () => {
    federation.resetCalls();
    const browser = join(world.home, 'fake-browser');
    // A browser that follows the URL (the sign-in endpoint then records the login) and leaves its
    // environment under HOME, where the leak scan reads it: the opener must hand it no secret.
    const browserEnv = join(world.home, 'browser-environ.json');
    writeFileSync(
      browser,
      `#!${process.execPath}\nrequire('node:fs').writeFileSync(${JSON.stringify(browserEnv)}, JSON.stringify(process.env));\n` +
        `fetch(process.argv[2], { redirect: 'manual' }).then((r) => process.exit(r.status === 302 ? 0 : 9), () => process.exit(8));\n`,
    );
    chmodSync(browser, 0o700);
    const result = await world.vault(['--debug', 'login', 'account-a'], { ...env, BROWSER: browser, DISPLAY: '', XDG_CURRENT_DESKTOP: '' });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('Opened the AWS console for profile account-a in your browser');
    expect(JSON.parse(readFileSync(browserEnv, 'utf8'))).toMatchObject({ BROWSER: browser });
    const logins = federation.calls.filter((c) => c.action === 'login');
    expect(logins).toEqual([expect.objectContaining({ ok: true, issuer: 'vault' })]);
    for (const token of federation.issuedTokens()) expect(result.stderr).not.toContain(token);
    expect(result.stderr).not.toContain(`${federation.url}?`);
  });

  it('a browser that cannot start: one line saying to use --stdout, non-zero, no URL printed', async () => {
    const result = await world.vault(['login', 'account-a'], { ...env, BROWSER: join(world.home, 'no-such-browser'), DISPLAY: '', XDG_CURRENT_DESKTOP: '' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^vault: could not open a browser for the console \(.+\); run `vault login --stdout account-a` and open the URL it prints yourself, or set BROWSER to your browser\n$/);
    for (const token of federation.issuedTokens()) expect(result.stderr).not.toContain(token);
  });

  it('a federation endpoint that refuses: one line with the remedy, non-zero, nothing on stdout', async () => {
    federation.refuseWith(400);
    try {
      const result = await world.vault(['login', '--stdout', 'account-a'], env);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(
        `vault: the sign-in endpoint ${federation.url} refused the credentials (HTTP 400) for profile account-a; ` +
          "the console takes role or federation credentials only; check the profile's role_arn, or run `vault clear account-a` and try again\n",
      );
    } finally {
      federation.refuseWith(undefined);
    }
  });

  it('a federation endpoint that cannot be reached: one line naming it', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const endpoint = `http://127.0.0.1:${port}/federation`;
    const result = await world.vault(['login', '--stdout', 'account-a'], { VAULT_SIGNIN_ENDPOINT: endpoint });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `vault: the sign-in endpoint ${endpoint} could not be reached (ECONNREFUSED) for profile account-a; check the network, and VAULT_SIGNIN_ENDPOINT if you set it\n`,
    );
  });

  it('a live daemon session of the profile is used: no prompt and no STS call', async () => {
    const started = await world.vault(['session', 'start', '-t', '123456', 'account-a']);
    expect(started.code).toBe(0);
    // Nothing left in the keyring: only the daemon's session can answer without an MFA code.
    expect((await world.vault(['clear'])).code).toBe(0);
    world.sts.resetCalls();
    federation.resetCalls();
    const result = await world.vault(['login', '--stdout', 'account-a'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(world.mintingCalls()).toBe(0);
    expect(federation.calls[0]).toMatchObject({ ok: true });
    expect(federation.calls[0]!.principalArn).toMatch(new RegExp(`^${assumedRolePrefix}/`));
    await world.captureDaemonEnviron();
  }, 60_000);
});
