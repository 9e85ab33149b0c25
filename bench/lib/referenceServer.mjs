/**
 * The reference for the credential-route benchmarks: a bare node:http server that answers every
 * request with the same bytes and headers vault's route sends, and checks nothing. Runs as its
 * own process (like the daemon); prints {"port"} once listening.
 *
 *   node bench/lib/referenceServer.mjs BODY_FILE
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const body = readFileSync(process.argv[2]);
const server = createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': body.length });
  response.end(body);
});
server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
