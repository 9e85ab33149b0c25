/**
 * When `vault exec`'s child dies of a signal, vault must die of the same signal rather than exit
 * 128+n: a shell tells the two apart (a `while` loop stops on a child killed by SIGINT, not on
 * exit 130). The command only records it here; bin.ts raises it after everything has been cleaned
 * up (an `exec --server` session stopped, logs flushed).
 */
let pending: NodeJS.Signals | undefined;

export function dieOfSignalOnExit(signal: NodeJS.Signals): void {
  pending = signal;
}

export function signalToDieOf(): NodeJS.Signals | undefined {
  return pending;
}

/**
 * Signals that node itself answers instead of the default action (SIGUSR1 starts the inspector,
 * SIGPIPE is ignored, SIGWINCH and SIGCHLD are ignored anyway): raising them would not end vault,
 * so it exits 128+n for them.
 */
const NOT_FATAL_TO_NODE = new Set<NodeJS.Signals>(['SIGUSR1', 'SIGPIPE', 'SIGWINCH', 'SIGCHLD', 'SIGCONT', 'SIGURG']);

/** Raises the recorded signal at vault itself with its default action; returns if it did not end vault. */
export function raisePendingSignal(): void {
  if (pending === undefined || NOT_FATAL_TO_NODE.has(pending)) return;
  process.removeAllListeners(pending);
  process.kill(process.pid, pending);
}
