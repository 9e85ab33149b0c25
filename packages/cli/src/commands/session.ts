import { VaultError, formatDuration } from '@vault/core';
import { DaemonClient } from '@vault/server/client';
import type { CreatedSession, SessionSummary } from '@vault/server';
import type { Context } from '../context.js';
import { daemon, mfaCodeForDaemon, runningDaemon, ssoSignInForDaemon, stateDir, unlockKeyring } from '../daemonLink.js';
import { SHADOWING_VARIABLES, mergeNoProxy } from '../environment/childEnvironment.js';
import { shellQuote } from '../format/exportFormats.js';
import { SESSION_SHELL_VARIABLE } from '../environment/sessionShell.js';
import { noteIfAnyLocalProcessCanRead } from '../imdsNote.js';
import { durationSeconds, mfaTokenOption } from './options.js';

export interface SessionStartInput {
  profile: string;
  imds?: boolean;
  duration?: string;
  mfaToken?: string;
  region?: string;
  lazy?: boolean;
  format: 'shell' | 'json';
  stdout?: boolean;
}

/** Starts a daemon session and prints what points a shell at it: `eval "$(vault session start P)"`. */
export async function sessionStart(input: SessionStartInput, ctx: Context): Promise<number> {
  const session = await startSession(ctx, input.profile, {
    kind: input.imds ? 'imds' : 'ecs',
    duration: input.duration,
    mfaToken: input.mfaToken,
    region: input.region,
    lazy: input.lazy,
    stdout: input.stdout === true,
  });
  if (input.imds) noteIfAnyLocalProcessCanRead(ctx.stderr);
  // Marks the shell as pointed at a session, not inside `vault exec`: see sessionShell.ts.
  const created = { ...session, env: { ...session.env, [SESSION_SHELL_VARIABLE]: session.id } };
  if (input.format === 'json') {
    // relativeUri: what a container gets as AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, its SDK then
    // asking 169.254.170.2 (`vault relay`, docker/README.md) with the same token.
    const relativeUri = created.kind === 'ecs' ? new URL(created.uri).pathname : undefined;
    ctx.stdout.write(
      `${JSON.stringify({ id: created.id, profile: created.profile, kind: created.kind, uri: created.uri, relativeUri, imdsEndpoint: created.imdsEndpoint, token: created.token, env: created.env })}\n`,
    );
    return 0;
  }
  const shadowing = SHADOWING_VARIABLES.filter((name) => !(name in created.env));
  ctx.stdout.write(`unset ${shadowing.join(' ')}\n`);
  for (const [name, value] of Object.entries(created.env)) ctx.stdout.write(`export ${name}=${shellQuote(value)}\n`);
  ctx.stderr.write(`# vault session ${created.id} for ${created.profile} (${created.kind}); stop it with: vault session stop ${created.id}\n`);
  return 0;
}

export async function startSession(
  ctx: Context,
  profile: string,
  options: { kind: 'ecs' | 'imds'; duration?: string; mfaToken?: string; region?: string; lazy?: boolean; noSession?: boolean; ownerPid?: number; stdout?: boolean },
): Promise<CreatedSession> {
  const seconds = durationSeconds(options.duration);
  const explicit = mfaTokenOption(options.mfaToken);
  const noSession = options.noSession === true;
  // The daemon never opens a browser: an IAM Identity Center sign-in it would need happens here.
  await ssoSignInForDaemon(ctx, profile, { region: options.region, stdout: options.stdout === true });
  const mfaToken = await mfaCodeForDaemon(ctx, profile, { mfaToken: explicit, region: options.region, noSession, ...(seconds ? { durationSeconds: seconds } : {}) });
  await unlockKeyring(ctx);
  const client = await daemon(ctx);
  const created = await client.createSession({
    profile,
    kind: options.kind,
    lazy: options.lazy === true,
    ...(noSession ? { noSession } : {}),
    ...(mfaToken ? { mfaToken } : {}),
    ...(seconds ? { durationSeconds: seconds } : {}),
    ...(options.region ? { region: options.region } : {}),
    ...(options.ownerPid ? { ownerPid: options.ownerPid } : {}),
  });
  return { ...created, env: mergeNoProxy(created.env, ctx.env) };
}

export async function sessionList(_input: object, ctx: Context): Promise<number> {
  // After a crash this starts a new daemon, which restores the sessions (same ids, URIs, tokens).
  const client = await runningDaemon(ctx);
  const sessions = client ? await client.listSessions() : [];
  const rows = sessions.map((s) => [
    s.profile,
    s.id,
    s.kind === 'imds' ? (s.imdsEndpoint ?? '-') : s.uri,
    s.credentialSecondsLeft === undefined ? '-' : formatDuration(s.credentialSecondsLeft * 1000),
    s.mfaSecondsLeft === undefined ? '-' : formatDuration(s.mfaSecondsLeft * 1000),
    String(s.requestsServed),
    s.state,
  ]);
  const all = [['PROFILE', 'ID', 'ENDPOINT', 'CREDS LEFT', 'MFA LEFT', 'REQUESTS', 'STATE'], ...rows];
  const widths = all[0]!.map((_, i) => Math.max(...all.map((r) => r[i]!.length)) + 2);
  for (const row of all) ctx.stdout.write(`${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('')}\n`);
  // What is wrong with a session that is not active, and what to run (on stderr: stdout stays the table).
  for (const s of sessions) {
    if (s.state === 'needs-mfa') ctx.stderr.write(`vault: session ${s.id} (${s.profile}) needs a new MFA code: run \`vault session renew ${s.id}\` (the URI and token stay the same)\n`);
    else if (s.state === 'needs-login') ctx.stderr.write(`vault: session ${s.id} (${s.profile}) needs a new IAM Identity Center sign-in: run \`vault session renew ${s.id}\` (the URI and token stay the same)\n`);
    else if (s.state === 'failed' && s.lastError) ctx.stderr.write(`vault: session ${s.id} (${s.profile}) failed: ${s.lastError.message}\n`);
  }
  return 0;
}

export interface SessionStopInput {
  target?: string;
  all?: boolean;
}

export async function sessionStop(input: SessionStopInput, ctx: Context): Promise<number> {
  const client = await runningDaemon(ctx);
  if (!client) {
    ctx.stderr.write('vault daemon is not running: no sessions to stop\n');
    return input.all ? 0 : 1;
  }
  if (input.all) {
    const stopped = await client.stopAllSessions();
    ctx.stderr.write(`Stopped ${stopped.length} session(s).\n`);
    return 0;
  }
  if (!input.target) throw new VaultError('USAGE', 'session stop needs a session id, a profile, or --all', { hint: 'see `vault session ls`' });
  const matches = (await client.listSessions()).filter((s) => s.id === input.target || s.profile === input.target);
  if (matches.length === 0) {
    throw new VaultError('SESSION_NOT_FOUND', `no session has id or profile "${input.target}"`, { hint: 'see `vault session ls`' });
  }
  for (const s of matches) await client.stopSession(s.id);
  ctx.stderr.write(`Stopped ${matches.map((s) => s.id).join(', ')}.\n`);
  return 0;
}

export interface SessionRenewInput {
  id: string;
  mfaToken?: string;
  stdout?: boolean;
}

/** Revives a session whose MFA session ran out: asks for a code here, keeps the same URI and token. */
export async function sessionRenew(input: SessionRenewInput, ctx: Context): Promise<number> {
  const explicit = mfaTokenOption(input.mfaToken);
  const client = (await runningDaemon(ctx)) ?? new DaemonClient({ stateDir: stateDir(ctx) });
  const summary: SessionSummary = await client.getSession(input.id);
  if (summary.state === 'needs-login') {
    // The device sign-in runs here (URL and code on stderr, the browser); the daemon then
    // refreshes with the new token from the keyring.
    const chain = await ctx.chain(summary.profile, { region: summary.region, stdout: input.stdout === true });
    await chain.renewSsoSignIn();
  } else {
    await ssoSignInForDaemon(ctx, summary.profile, { region: summary.region, stdout: input.stdout === true });
  }
  const code = await mfaCodeForDaemon(ctx, summary.profile, { mfaToken: explicit, region: summary.region, noSession: summary.noSession === true });
  const renewed = await client.renewSession(input.id, code);
  ctx.stderr.write(`Session ${renewed.id} for ${renewed.profile} is ${renewed.state}.\n`);
  return renewed.state === 'active' ? 0 : 1;
}
