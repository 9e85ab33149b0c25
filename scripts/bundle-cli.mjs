/**
 * Bundles the built CLI (packages/cli/dist, from tsc) into packages/cli/bundle/: `bin.js` and the
 * chunks its lazy imports load. Node resolves and links ~50 ESM files for every command when run
 * from dist/ — 30-40 ms of a ~100 ms budget on top of starting Node; one file and a few chunks
 * cost a fraction of that. Everything of ours (core, server, cli) is in the bundle, so there is
 * one copy of each class (`instanceof VaultError` holds across packages); third-party packages
 * stay external and load from node_modules when, and only when, a command needs them (keytar is
 * native, the AWS SDK, fastify, pino and jose are large and lazily imported).
 */
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const repo = fileURLToPath(new URL('..', import.meta.url));
const version = (pkg) => JSON.parse(readFileSync(`${repo}packages/${pkg}/package.json`, 'utf8')).version;
// Bundled, the server's version is read from the package.json next to the bundle (the CLI's).
if (version('cli') !== version('server') || version('cli') !== version('core')) {
  throw new Error('bundle-cli: packages/{core,server,cli} must share one version');
}

// The CLI's workspace reaches every package inlined (through the hoisted node_modules).
const requireFrom = createRequire(`${repo}packages/cli/package.json`);
const outdir = `${repo}packages/cli/bundle`;
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { bin: `${repo}packages/cli/dist/bin.js` },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external', // every bare import stays external, except those inlined below
  plugins: [
    {
      name: 'inline',
      setup(b) {
        // Our own workspaces (one copy of each class), and commander: small, pure-JS and needed
        // by every command, cheaper inlined than loaded through node's CommonJS-from-ESM
        // path (which parses each file twice). Resolved as node would, through each package's
        // exports.
        b.onResolve({ filter: /^(@vault\/[^/]+(\/.*)?|commander)$/ }, (args) => ({ path: requireFrom.resolve(args.path) }));
      },
    },
    {
      name: 'http-without-websocket',
      setup(b) {
        // On Node 22+ an ES `import … from 'node:http'` costs ~55 ms (measured on Node 24.22: an
        // empty module 67 ms, with the import 122 ms; `require('node:http')` 72 ms): the ESM
        // wrapper reads every export, and `WebSocket`, `CloseEvent` and `MessageEvent` are lazy
        // getters that load undici. Every cached `vault exec` talks to the daemon over node:http,
        // so our code gets http and https through require, with the plain (non-getter) exports
        // named; an export we use that is not listed fails the build.
        b.onResolve({ filter: /^(node:)?https?$/ }, (args) =>
          // The require in the module made below is node's own, not another one of these.
          args.kind === 'require-call' ? { path: args.path, external: true } : { path: args.path.replace(/^node:/, ''), namespace: 'cjs-builtin' },
        );
        b.onLoad({ filter: /.*/, namespace: 'cjs-builtin' }, (args) => {
          const names = Object.entries(Object.getOwnPropertyDescriptors(requireFrom(`node:${args.path}`)))
            .filter(([name, descriptor]) => descriptor.get === undefined && /^[A-Za-z]\w*$/.test(name))
            .map(([name]) => name);
          return { contents: `const m = require('node:${args.path}');\nexport default m;\nexport const { ${names.join(', ')} } = m;\n`, loader: 'js' };
        });
      },
    },
  ],
  // Chunks next to bin.js: code that finds files from import.meta.url (the CLI's package.json,
  // bin.js to start the daemon) must see the same directory from every chunk.
  chunkNames: '[name]-[hash]',
  // Inlined CommonJS (commander) requires node built-ins at run time.
  banner: { js: "import { createRequire as __vaultCreateRequire } from 'node:module'; const require = __vaultCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
