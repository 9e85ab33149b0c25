import { DaemonClient } from '@vault/server/client';
import type { Context } from '../context.js';
import { stateDir, superviseDaemon } from '../daemonLink.js';
import { withoutShadowing } from '../environment/childEnvironment.js';
import { withoutSessionMarker } from '../environment/sessionShell.js';
import { noteIfAnyLocalProcessCanRead } from '../imdsNote.js';
import { commandLine, runChild, type ExecInput } from './exec.js';
import { startSession } from './session.js';

/**
 * `exec --server` / `--ec2-server`: the child gets the endpoint variables instead of keys, so its
 * SDK refreshes by itself for as long as the session lives; the session ends with the child. While
 * the child runs, a daemon that dies is started again, and it restores the session with the same
 * URI and token (the session is recorded in the keyring as belonging to this process).
 */
export async function execWithServer(input: ExecInput, ctx: Context): Promise<number> {
  const created = await startSession(ctx, input.profile, {
    kind: input.ec2Server ? 'imds' : 'ecs',
    duration: input.duration,
    mfaToken: input.mfaToken,
    region: input.region,
    lazy: input.lazy,
    noSession: input.session === false,
    ownerPid: process.pid,
    stdout: input.stdout === true,
  });
  if (input.ec2Server) noteIfAnyLocalProcessCanRead(ctx.stderr);
  const env = { ...withoutSessionMarker(withoutShadowing(ctx.env)), ...created.env };
  const watch = superviseDaemon(ctx, created.id);
  try {
    return await runChild(commandLine(input.command, ctx.env), env, ctx);
  } finally {
    watch.stop();
    await new DaemonClient({ stateDir: stateDir(ctx) }).stopSession(created.id).catch(() => undefined);
  }
}
