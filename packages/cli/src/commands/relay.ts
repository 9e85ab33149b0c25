import { VaultError } from '@vault/core';
import type { Context } from '../context.js';
import { checkRelaySocket } from '../relay/relaySocketCheck.js';
import { DEFAULT_LISTEN, parseListen, startRelay } from '../relay/relayServer.js';

export interface RelayInput {
  socket: string;
  listen?: string;
}

/**
 * `vault relay --socket PATH [--listen ADDRESS:PORT]`: the relay image's entrypoint. Forwards the
 * container credential route from the container network to the daemon's relay socket, in the
 * foreground, until SIGTERM or SIGINT. The daemon keeps listening on 127.0.0.1 only.
 */
export async function relay(input: RelayInput, ctx: Context): Promise<number> {
  const listen = parseListen(input.listen ?? DEFAULT_LISTEN);
  // Before listening: a container that reaches the relay must never find it forwarding nowhere.
  await checkRelaySocket(input.socket);
  let gone = false;
  let stop!: (why: NodeJS.Signals | 'daemon-gone') => void;
  const stopped = new Promise<NodeJS.Signals | 'daemon-gone'>((resolve) => (stop = resolve));
  const running = await startRelay(listen, input.socket, () => {
    gone = true;
    stop('daemon-gone');
  });
  ctx.stderr.write(`vault relay: listening on ${listen.text}, forwarding /creds/ID to ${input.socket}\n`);
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  const why = await stopped;
  await running.close();
  if (gone) {
    // Ends the relay so that its container restarts (compose: restart: unless-stopped) and mounts the
    // socket the next daemon makes; a bind mount of a socket file keeps showing the old one.
    throw new VaultError('DAEMON_UNAVAILABLE', `the daemon stopped answering on ${input.socket}`, {
      hint: 'start it (`vault server start`); the relay container restarts and finds the new socket',
    });
  }
  ctx.stderr.write(`vault relay: stopped (${why})\n`);
  return 0;
}
