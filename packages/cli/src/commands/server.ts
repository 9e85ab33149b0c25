import { CredentialKeyring, SdkStsGateway, VaultError, formatDuration } from '@vault/core';
import { DaemonClient, coreSourceFactory, startDaemon } from '@vault/server';
import type { Context } from '../context.js';
import { daemon, stateDir } from '../daemonLink.js';

export interface ServerInput {
  action: 'start' | 'stop' | 'status' | 'run';
}

export async function server(input: ServerInput, ctx: Context): Promise<number> {
  switch (input.action) {
    case 'run':
      return runInForeground(ctx);
    case 'start': {
      await unlockForDaemon(ctx);
      const client = await daemon(ctx);
      const status = await client.status();
      ctx.stderr.write(`vault daemon running: pid ${status.pid}, credentials on 127.0.0.1:${status.port}, ${status.sessions} session(s)\n`);
      return 0;
    }
    case 'stop': {
      const client = new DaemonClient({ stateDir: stateDir(ctx) });
      if (!(await client.isRunning())) {
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
        ctx.stdout.write('vault daemon: not running\n');
        return 3;
      }
      const s = await client.status();
      ctx.stdout.write(
        `vault daemon: running\npid: ${s.pid}\nport: ${s.port}\nuptime: ${formatDuration(s.uptimeSeconds * 1000)}\nsessions: ${s.sessions}\nversion: ${s.version}\nlog: ${client.logFile}\n`,
      );
      return 0;
    }
  }
}

/** Opens the keyring now (asking for a file passphrase on the terminal) so the daemon inherits it. */
export async function unlockForDaemon(ctx: Context): Promise<void> {
  const keyring = await ctx.keyring();
  if (keyring.backend === 'file') await new CredentialKeyring(keyring).profiles().then((names) => names[0] && keyring.get(names[0]));
}

async function runInForeground(ctx: Context): Promise<number> {
  // The daemon holds the keyring open for hours: each file-keyring item's KDF is paid once.
  ctx.rememberDecrypted = true;
  const d = await startDaemon({
    stateDir: stateDir(ctx),
    sourceFactory: coreSourceFactory({
      env: ctx.env,
      homeDir: ctx.homeDir,
      keyring: () => ctx.keyring(),
      sts: new SdkStsGateway(),
      clock: ctx.clock,
    }),
  }).catch((error: unknown) => {
    if (error instanceof VaultError) throw error;
    throw new VaultError('DAEMON_UNAVAILABLE', `the vault daemon could not start: ${(error as Error).message}`, { cause: error });
  });
  await d.closed;
  return 0;
}
