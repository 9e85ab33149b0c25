import { existsSync } from 'node:fs';
import { SdkStsGateway, VaultError, formatDuration } from '@vault/core';
import { dirname } from 'node:path';
import { DaemonClient, KeyringSessionStore, daemonPaths, removeDaemonFiles, removeLegacyLeftovers, withMovedRecords, type SessionStore } from '@vault/server/client';
import type { Context } from '../context.js';
import { crashedDaemon, daemon, stateDir, stateLocationOf, unlockKeyring } from '../daemonLink.js';
import { receivePassphrase } from '../daemonPassphrase.js';

export interface ServerInput {
  action: 'start' | 'stop' | 'status' | 'run';
  format?: 'text' | 'json';
}

export async function server(input: ServerInput, ctx: Context): Promise<number> {
  switch (input.action) {
    case 'run':
      return runInForeground(ctx);
    case 'start': {
      // Opens the keyring now (asking for a file passphrase on the terminal) so the daemon is handed it.
      await unlockKeyring(ctx);
      const client = await daemon(ctx);
      const status = await client.status();
      ctx.stderr.write(`vault daemon running: pid ${status.pid}, credentials on 127.0.0.1:${status.port}, ${status.sessions} session(s)\n`);
      return 0;
    }
    case 'stop': {
      const client = new DaemonClient({ stateDir: stateDir(ctx) });
      if (!(await client.isRunning())) {
        const crashed = crashedDaemon(ctx);
        if (crashed !== undefined) return forgetCrashedDaemon(ctx, crashed);
        ctx.stderr.write('vault daemon is not running\n');
        return 0;
      }
      await client.shutdown();
      ctx.stderr.write('vault daemon stopped\n');
      return 0;
    }
    case 'status': {
      const client = new DaemonClient({ stateDir: stateDir(ctx) });
      if (!(await client.isRunning())) {
        const crashed = crashedDaemon(ctx)?.pid;
        if (input.format === 'json') {
          ctx.stdout.write(`${JSON.stringify({ running: false, ...(crashed === undefined ? {} : { crashedPid: crashed }) })}\n`);
          return 3;
        }
        ctx.stdout.write(
          crashed === undefined
            ? 'vault daemon: not running\n'
            : `vault daemon: not running (pid ${crashed} ended without stopping; \`vault server start\` or any session command starts a new one, which restores its sessions)\n`,
        );
        return 3;
      }
      const s = await client.status();
      const dir = dirname(client.socketPath);
      if (input.format === 'json') {
        // relaySocket: what `vault relay --socket` is given (a daemon of a version without one has none).
        const relay = daemonPaths(dir).relaySocket;
        const relaySocket = existsSync(relay) ? relay : null;
        ctx.stdout.write(`${JSON.stringify({ running: true, ...s, stateDir: dir, socket: client.socketPath, relaySocket, log: client.logFile })}\n`);
        return 0;
      }
      // A daemon of the previous version, still in the place anything sharing HOME can reach.
      const where = dir === stateLocationOf(ctx).dir ? dir : `${dir} (where it was before XDG_RUNTIME_DIR; \`vault server stop\` and start it again to move it)`;
      ctx.stdout.write(
        `vault daemon: running\npid: ${s.pid}\nport: ${s.port}\nuptime: ${formatDuration(s.uptimeSeconds * 1000)}\nsessions: ${s.sessions}\nversion: ${s.version}\nstate: ${where}\nlog: ${client.logFile}\n`,
      );
      return 0;
    }
  }
}

/**
 * `vault server stop` after a crash: what a clean stop would have done — the sessions the killed
 * daemon recorded in the keyring are forgotten (no later start restores them), its files removed.
 */
async function forgetCrashedDaemon(ctx: Context, { pid, stateDir: dir }: { pid: number; stateDir: string }): Promise<number> {
  const store = new KeyringSessionStore(() => ctx.keyring(), dir);
  const { records } = await store.load().catch(() => ({ records: [] as unknown[] }));
  await store.clear();
  const forgotten = records.length;
  removeDaemonFiles(dir);
  ctx.stderr.write(`vault daemon was not running (pid ${pid} had ended without stopping); forgot its ${forgotten} session(s)\n`);
  return 0;
}

/**
 * The store's first load, started at once: after a crash, clients are failing until the new daemon
 * listens, and reading the sessions (a key derivation with the file backend, D-Bus with the
 * keychain) runs off the event loop while fastify loads and compiles its routes.
 */
function preloadedStore(store: SessionStore): SessionStore {
  let first: ReturnType<SessionStore['load']> | undefined = store.load();
  first.catch(() => undefined);
  return {
    load: () => {
      const preloaded = first;
      first = undefined;
      return preloaded ?? store.load();
    },
    save: (records) => store.save(records),
    clear: () => store.clear(),
  };
}

async function runInForeground(ctx: Context): Promise<number> {
  // Started by `vault server start` (or any command): the passphrase comes on a pipe, read once here.
  if (ctx.passphraseFd !== undefined) ctx.filePassphrase = await receivePassphrase(ctx.passphraseFd);
  // The daemon holds the keyring open for hours: each file-keyring item's KDF is paid once.
  ctx.rememberDecrypted = true;
  const location = stateLocationOf(ctx);
  // The old place while a daemon from before the move runs there: startDaemon refuses it then.
  const dir = stateDir(ctx);
  // Sessions are recorded in the keyring, so a daemon started after a crash restores them; in the
  // new place also those a daemon killed in the old place recorded (moved once).
  const own = new KeyringSessionStore(() => ctx.keyring(), dir);
  const moved = location.legacy !== undefined && dir !== location.legacy ? withMovedRecords(own, new KeyringSessionStore(() => ctx.keyring(), location.legacy)) : undefined;
  const sessionStore = preloadedStore(moved ?? own);
  const { coreSourceFactory, startDaemon } = await import('@vault/server');
  const d = await startDaemon({
    stateDir: dir,
    sessionStore,
    sourceFactory: coreSourceFactory({
      env: ctx.env,
      homeDir: ctx.homeDir,
      keyring: () => ctx.keyring(),
      // A route that has nothing valid waits on this call, and SDK clients give up on the endpoint
      // after 1-2 s: fail fast (≤ 2 × 3 s) and let the session's backoff retry, instead of holding
      // a request for the 3 × 10 s a command may spend.
      sts: new SdkStsGateway({ requestTimeoutMs: 3_000, maxAttempts: 2 }),
      clock: ctx.clock,
    }),
  }).catch((error: unknown) => {
    if (error instanceof VaultError) throw error;
    throw new VaultError('DAEMON_UNAVAILABLE', `the vault daemon could not start: ${(error as Error).message}`, { cause: error });
  });
  if (moved) {
    // Before any request is served (no await in between): a command that sees this daemon answer
    // no longer sees the killed one's files.
    removeLegacyLeftovers(location);
    // Sessions taken over from the old place: written under the new place's name now, which
    // removes them from the old one (a failed write is logged; they stay there for the next start).
    if (moved.pending) await d.registry.persist();
  }
  await d.closed;
  return 0;
}
