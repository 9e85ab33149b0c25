import { DaemonClient } from '@vault/server/client';
import type { Context } from '../context.js';
import { stateDir } from '../daemonLink.js';
import { withoutShadowing } from '../format/childEnv.js';
import { commandLine, runChild, type ExecInput } from './exec.js';
import { startSession } from './session.js';

/**
 * `exec --server` / `--ec2-server`: the child gets the endpoint variables instead of keys, so its
 * SDK refreshes by itself for as long as the session lives; the session ends with the child.
 */
export async function execWithServer(input: ExecInput, ctx: Context): Promise<number> {
  const created = await startSession(ctx, input.profile, {
    kind: input.ec2Server ? 'imds' : 'ecs',
    duration: input.duration,
    mfaToken: input.mfaToken,
    region: input.region,
    lazy: input.lazy,
  });
  const env = { ...withoutShadowing(ctx.env), ...created.env };
  try {
    return await runChild(commandLine(input.command, ctx.env), env, ctx);
  } finally {
    await new DaemonClient({ stateDir: stateDir(ctx) }).stopSession(created.id).catch(() => undefined);
  }
}
