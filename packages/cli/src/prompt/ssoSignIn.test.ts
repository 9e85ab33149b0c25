import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { canOpenBrowser, ssoSignInPrompt } from './ssoSignIn.js';

describe('the IAM Identity Center sign-in prompt', () => {
  it('opens a browser on macOS and Windows, and on Linux only with a display or $BROWSER', () => {
    expect(canOpenBrowser({}, 'darwin')).toBe(true);
    expect(canOpenBrowser({}, 'win32')).toBe(true);
    expect(canOpenBrowser({}, 'linux')).toBe(false);
    expect(canOpenBrowser({ DISPLAY: ':0' }, 'linux')).toBe(true);
    expect(canOpenBrowser({ WAYLAND_DISPLAY: 'wayland-0' }, 'linux')).toBe(true);
    expect(canOpenBrowser({ BROWSER: 'w3m' }, 'freebsd')).toBe(true);
  });

  it('prints the start URL, profile, verification URL and user code on stderr, and only prints with no browser', async () => {
    const stderr = new PassThrough();
    let text = '';
    stderr.on('data', (c: Buffer) => (text += c.toString()));
    await ssoSignInPrompt({ stderr, env: {}, printOnly: false, platform: 'linux' })({
      profile: 'dev',
      startUrl: 'https://my-org.awsapps.com/start',
      verificationUri: 'https://device.sso.eu-west-1.amazonaws.com/',
      verificationUriComplete: 'https://device.sso.eu-west-1.amazonaws.com/?user_code=BCDF-GHJK',
      userCode: 'BCDF-GHJK',
      expiresAt: new Date(Date.now() + 630_000), // half a minute of slack: formatDuration floors to the minute
    });
    expect(text).toBe(
      'Sign in to IAM Identity Center (https://my-org.awsapps.com/start) for profile dev:\n' +
        'open https://device.sso.eu-west-1.amazonaws.com/?user_code=BCDF-GHJK\n' +
        'and check the code BCDF-GHJK (it expires in 10m). Waiting for approval...\n',
    );
  });
});
