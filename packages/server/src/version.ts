import { readFileSync } from 'node:fs';

/**
 * The package version, read from package.json next to `src/` or `dist/` (both one level below
 * it), so `vault server status` and the CLI can tell a stale daemon from the current build.
 */
function readVersion(): string {
  try {
    const raw = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
    const version = (JSON.parse(raw) as { version?: unknown }).version;
    return typeof version === 'string' ? version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const SERVER_VERSION: string = readVersion();
