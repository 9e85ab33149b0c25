import { statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { VaultError } from '@vault/core';
import { RELAY_HELLO_PATH, RELAY_SERVICE } from '@vault/server/relay';

const WHERE = 'give the path `vault server status --format json` reports as relaySocket (relay.sock in the daemon state directory)';

/**
 * Refuses a --socket that is not a vault daemon's relay socket, before the relay listens: a path
 * that does not exist, a file that is not a socket, a socket nobody answers on, or one that answers
 * but not as the relay socket does (the control socket included: it is never to be forwarded to).
 */
export async function checkRelaySocket(path: string, timeoutMs = 3_000): Promise<void> {
  let stat;
  try {
    stat = statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new VaultError('USAGE', `the relay socket ${path} does not exist`, { hint: `start the daemon (\`vault server start\`) and ${WHERE}; in a container, bind-mount it there` });
    }
    throw new VaultError('USAGE', `the relay socket ${path} cannot be read (${code ?? 'error'})`, { hint: `run the relay as the daemon's user, and ${WHERE}` });
  }
  if (!stat.isSocket()) throw new VaultError('USAGE', `${path} is not a Unix socket`, { hint: WHERE });
  const hello = await new Promise<{ status: number; body: string } | NodeJS.ErrnoException>((resolve) => {
    const req = httpRequest({ socketPath: path, path: RELAY_HELLO_PATH, method: 'GET', headers: { host: 'relay' }, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 4096) body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (error) => resolve(error));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error));
    req.end();
  });
  if (hello instanceof Error) {
    const code = hello.code ?? 'error';
    if (code === 'EACCES') throw new VaultError('USAGE', `the relay socket ${path} is not open to this user`, { hint: "run the relay as the daemon's user (in compose: `user: \"${UID}\"`)" });
    throw new VaultError('DAEMON_UNAVAILABLE', `nothing answers on the relay socket ${path} (${code})`, { hint: 'start the daemon (`vault server start`); after a daemon restart, restart the relay too' });
  }
  let service: unknown;
  try {
    service = (JSON.parse(hello.body) as { Service?: unknown }).Service;
  } catch {
    service = undefined;
  }
  if (hello.status !== 200 || service !== RELAY_SERVICE) {
    throw new VaultError('USAGE', `${path} is not a vault daemon's relay socket`, { hint: WHERE });
  }
}
