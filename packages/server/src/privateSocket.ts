import { chmodSync, statSync } from 'node:fs';
import type { Server } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** What a socket is created with under it: rw for the owner only (bind applies ~umask to 0777). */
const OWNER_ONLY_UMASK = 0o177;

/**
 * `app.listen({path})`, with the socket created 0600 by bind() itself: no moment in which it has the
 * process umask's mode (0777 under umask 0) and another uid that can reach the directory could
 * connect. The umask is process-wide, so it is set only for the synchronous `server.listen` call in
 * which node binds a Unix socket (outside cluster mode, as here), not across the awaits around it;
 * no JavaScript runs meanwhile. The directory is 0700 already (prepareStateDir): the second lock.
 */
export async function listenOnPrivateSocket(app: FastifyInstance, path: string): Promise<void> {
  const server: Server = app.server;
  const listen = server.listen;
  server.listen = function (this: Server, ...args: unknown[]) {
    const previous = process.umask(OWNER_ONLY_UMASK);
    try {
      return (listen as (...a: unknown[]) => Server).apply(this, args);
    } finally {
      process.umask(previous);
    }
  } as Server['listen'];
  try {
    await app.listen({ path });
  } finally {
    // The own property shadowed the prototype's listen: removing it restores node's.
    delete (server as { listen?: unknown }).listen;
  }
  // A platform whose bind ignored the umask: tighten it now (the 0700 directory covered the gap).
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
}
