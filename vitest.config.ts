import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    // Unit tests run against the TypeScript sources; end-to-end tests run the built CLI.
    alias: [
      { find: /^@vault\/stand-ins$/, replacement: here('./packages/stand-ins/src/index.ts') },
      { find: /^@vault\/stand-ins\/server$/, replacement: here('./packages/stand-ins/src/server/index.ts') },
      { find: /^@vault\/core$/, replacement: here('./packages/core/src/index.ts') },
      { find: /^@vault\/server\/client$/, replacement: here('./packages/server/src/client.ts') },
      { find: /^@vault\/server$/, replacement: here('./packages/server/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
