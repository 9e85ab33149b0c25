import { formatDuration, type SsoSignInPrompt } from '@vault/core';

export interface SsoSignInOptions {
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** `--stdout`: only print the URL and code (aws-vault's flag); never start a browser. */
  printOnly: boolean;
  platform?: NodeJS.Platform;
}

/**
 * Whether there is a browser to open: always on macOS and Windows; on Linux and the BSDs only
 * with a display (X11, Wayland) or a $BROWSER (xdg-open's own fallback). A server over ssh has
 * none, and then the URL and code are only printed, as with --stdout.
 */
export function canOpenBrowser(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): boolean {
  if (platform === 'darwin' || platform === 'win32') return true;
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY || env.BROWSER);
}

/**
 * Shows an IAM Identity Center device sign-in on stderr (stdout belongs to `export` and to the
 * command `exec` runs) and opens the browser at the verification URL, with `open` loaded only
 * here. The user code is what the person compares in the browser; it is not a secret (the device
 * code, which is, never leaves the chain).
 */
export function ssoSignInPrompt(options: SsoSignInOptions): (prompt: SsoSignInPrompt) => Promise<void> {
  return async (prompt) => {
    const browser = !options.printOnly && canOpenBrowser(options.env, options.platform);
    options.stderr.write(
      `Sign in to IAM Identity Center (${prompt.startUrl}) for profile ${prompt.profile}:\n` +
        `${browser ? 'opening' : 'open'} ${prompt.verificationUriComplete}\n` +
        `and check the code ${prompt.userCode} (it expires in ${formatDuration(prompt.expiresAt.getTime() - Date.now())}). Waiting for approval...\n`,
    );
    if (!browser) return;
    try {
      const { default: open } = await import('open');
      const child = await open(prompt.verificationUriComplete);
      // A browser that cannot start is no failure: the URL is on the screen.
      child.once('error', () => undefined);
    } catch {
      options.stderr.write('vault: note: could not open a browser; open the URL above by hand\n');
    }
  };
}
