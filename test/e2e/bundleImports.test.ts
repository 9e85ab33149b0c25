import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BUNDLE = fileURLToPath(new URL('../../packages/cli/bundle', import.meta.url));

describe('the CLI bundle', () => {
  it('gets node:http and node:https through require, never an ES import (which on Node 22+ loads undici for http.WebSocket)', () => {
    expect(existsSync(join(BUNDLE, 'bin.js')), 'run `npm run build` first').toBe(true);
    const esImports: string[] = [];
    for (const file of readdirSync(BUNDLE).filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(join(BUNDLE, file), 'utf8');
      for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s*)["']((?:node:)?https?)["']/gm)) esImports.push(`${file}: ${match[1]}`);
    }
    expect(esImports).toEqual([]);
    // …and our code does use them: the daemon client, doctor's STS check.
    const all = readdirSync(BUNDLE).map((f) => readFileSync(join(BUNDLE, f), 'utf8')).join('\n');
    expect(all).toContain('require("node:http")');
    expect(all).toContain('require("node:https")');
  });
});
