// Listens on 127.0.0.1 (a random port) of the network namespace it runs in and pipes each
// connection to a Unix socket (argv[2]): how a client inside a test's namespace reaches a stand-in
// that listens on the host's loopback, with no address outside the namespace. Prints {"port":N}.
import { connect, createServer } from 'node:net';

const target = process.argv[2];
const server = createServer((client) => {
  const upstream = connect(target);
  client.pipe(upstream).pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
});
server.listen({ host: '127.0.0.1', port: 0 }, () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
