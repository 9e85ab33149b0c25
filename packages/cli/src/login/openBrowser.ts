import { VaultError } from '@vault/core';

/**
 * How long to wait for the opener (xdg-open, open, start) to report failure. It exits within
 * milliseconds when it hands the URL to a running browser or finds none; when it runs a browser in
 * the foreground it does not exit at all, and that means the browser started.
 */
const OPENER_VERDICT_MS = 5_000;

/**
 * Opens the sign-in URL with the platform's opener, through the `open` package (loaded only here).
 * The URL is never logged; on failure the line says what to do instead.
 */
export async function openInBrowser(url: string, profile: string): Promise<void> {
  const unavailable = (reason: string, cause?: unknown) =>
    new VaultError('BROWSER_UNAVAILABLE', `could not open a browser for the console (${reason})`, {
      hint: `run \`vault login --stdout ${profile}\` and open the URL it prints yourself, or set BROWSER to your browser`,
      cause,
    });
  const { default: open } = await import('open');
  let child: import('node:child_process').ChildProcess;
  try {
    child = await open(url, { wait: false });
  } catch (error) {
    throw unavailable((error as NodeJS.ErrnoException).code ?? 'the opener did not start', error);
  }
  const verdict = await new Promise<number | 'running'>((resolve) => {
    const timer = setTimeout(() => resolve('running'), OPENER_VERDICT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code ?? 1);
    });
    child.once('error', () => {
      clearTimeout(timer);
      resolve(-1);
    });
  });
  if (verdict !== 'running' && verdict !== 0) throw unavailable(`${child.spawnfile.split('/').pop()} exited with ${verdict}`);
}
