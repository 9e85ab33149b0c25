import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// How every stand-in listens and stops: on 127.0.0.1 only (tests point clients at it; nothing
// else on the network may reach it), and closed with its keep-alive connections, which would
// otherwise hold close() open until the client lets go.

/** Listens on 127.0.0.1 (port 0: a free one); the port it got. A listen error rejects. */
export function listenOnLoopback(server: Server, port = 0): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes the server and every connection still open to it. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
