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
  const running = await startRelay(listen, input.socket);
  ctx.stderr.write(`vault relay: listening on ${listen.text}, forwarding /creds/ID to ${input.socket}\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  await running.close();
  ctx.stderr.write(`vault relay: stopped (${signal})\n`);
  return 0;
}
