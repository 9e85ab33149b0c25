#!/usr/bin/env node
// npm links a package's bins when it installs it, which is before `npm run build` creates dist/;
// this committed launcher is what it links, so node_modules/.bin/vault exists after `npm ci`.
// It runs the bundle (scripts/bundle-cli.mjs), which starts faster than dist/.
import '../bundle/bin.js';
