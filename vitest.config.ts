import { availableParallelism } from 'node:os';
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
    // Most end-to-end time is spent waiting on the processes a test starts (the built CLI, the
    // daemon, gpg, the AWS CLI), not on this process's CPU. vitest's default (one fewer worker
    // than CPUs) runs the suite one file at a time on a 2-CPU machine: 371 s there for 861 tests,
    // against 209 s with 3 workers, every test passing. The files that use the keychain share one
    // Secret Service; scripts/test.sh runs those one at a time (--maxWorkers=1).
    maxWorkers: availableParallelism() + 1,
    minWorkers: 1,
  },
});
