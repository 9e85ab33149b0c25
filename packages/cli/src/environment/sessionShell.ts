/**
 * `vault session start` points a shell at a daemon session and exports `AWS_VAULT=PROFILE`, as
 * `vault exec` does for its child, so prompts and tools that show AWS_VAULT keep showing the
 * profile. But that shell is not running inside vault: it holds an endpoint, no keys, and a
 * `vault exec` there gives its child keys of its own and removes the endpoint. So the session's
 * lines also export this marker (the session id), and `exec` refuses to nest only when AWS_VAULT
 * comes without it. Every child vault starts loses the marker, so inside `vault exec` (or
 * `exec --server`) AWS_VAULT means nesting again.
 */
export const SESSION_SHELL_VARIABLE = 'VAULT_SESSION';

/** The profile of the `vault exec` this environment runs inside, if it does (not a session shell). */
export function enclosingExec(env: NodeJS.ProcessEnv): string | undefined {
  if (!env.AWS_VAULT) return undefined;
  return env[SESSION_SHELL_VARIABLE] ? undefined : env.AWS_VAULT;
}

/** A child's environment without the session-shell marker: the child is inside vault. */
export function withoutSessionMarker(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean = { ...env };
  delete clean[SESSION_SHELL_VARIABLE];
  return clean;
}
