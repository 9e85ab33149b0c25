import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { LISTEN_HOST } from './buildServer.js';

/**
 * The ports the daemon picks for itself lie below the kernel's ephemeral range. A restarted daemon
 * listens again on the port its sessions' URIs name; while it is down, a port in the ephemeral
 * range may be handed to any outgoing connection on the machine — even to a client retrying
 * `127.0.0.1:PORT`, which then connects to itself — and the port could not be had back. No
 * connection is ever given a port below that range unless it asks for it.
 */
const LOWEST = 10_000;
const ATTEMPTS = 24;

/** [first, last] of the ephemeral range: Linux's setting, else the IANA range (macOS, BSD). */
export function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low! > 0 && high! >= low!) return [low!, high!];
  } catch {
    // not Linux
  }
  return [49_152, 65_535];
}

/** A random candidate below the ephemeral range, or undefined when that range starts too low. */
export function candidatePort(random: () => number = Math.random): number | undefined {
  const [ephemeralLow] = ephemeralRange();
  const high = ephemeralLow - 1;
  if (high - LOWEST < 1_000) return undefined;
  return LOWEST + Math.floor(random() * (high - LOWEST + 1));
}

/**
 * Listens on 127.0.0.1: on `port` when given (a restarted daemon keeping its URIs; an error when
 * it is taken), else on a free port below the ephemeral range, falling back to one the kernel picks.
 * Returns the port.
 */
export async function listenOnLoopback(app: FastifyInstance, port?: number): Promise<number> {
  if (port !== undefined && port !== 0) {
    await app.listen({ host: LISTEN_HOST, port });
    return (app.server.address() as AddressInfo).port;
  }
  for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
    const candidate = candidatePort();
    if (candidate === undefined) break;
    try {
      await app.listen({ host: LISTEN_HOST, port: candidate });
      return (app.server.address() as AddressInfo).port;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' && code !== 'EACCES') throw error;
    }
  }
  await app.listen({ host: LISTEN_HOST, port: 0 });
  return (app.server.address() as AddressInfo).port;
}
