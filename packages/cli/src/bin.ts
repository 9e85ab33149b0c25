#!/usr/bin/env node
// The thin entry point: everything else is imported by main, and only here does the process exit.
import { raisePendingSignal } from './exitSignal.js';
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A child that died of a signal: vault dies of it too, so the shell sees a signal, not an exit.
    raisePendingSignal();
    // Pending keychain calls or sockets must not keep a finished command alive.
    setImmediate(() => process.exit(code));
  },
  (error: unknown) => {
    process.stderr.write(`vault: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(70);
  },
);
