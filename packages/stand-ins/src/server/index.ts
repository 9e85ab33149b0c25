/**
 * Stand-ins for the daemon's tests (the server's own and test/'s): fake credential sources on an
 * injected clock, a harness with a registry and the credential app (never listening), and a real
 * daemon over fakes in a temporary state directory. Apart from the package's main entry so that
 * what only needs the STS stand-in does not load the server.
 */
export * from './daemonFixture.js';
export * from './fakes.js';
export * from './harness.js';
