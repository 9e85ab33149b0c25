import { rmSync } from 'node:fs';
import { VaultError } from '@vault/core';
import { daemonPaths, stateDirInUse, type StateLocation } from '../paths.js';
import { isProcessAlive, readPidFile } from '../processes.js';
import { DaemonClient } from './daemonClient.js';

// Finding the daemon a command should talk to from its state directory alone: the one that
// answers, one that ended without stopping (its pid file is left), or none.

/**
 * The pid a daemon left behind when it ended without cleaning up (killed, crashed): its pid file
 * is still there and names a process that is gone. A daemon that stops cleanly removes it.
 * Returned with the state directory it left its files in: the new place, else the old one.
 */
export function crashedDaemon(location: StateLocation): { pid: number; stateDir: string } | undefined {
  for (const dir of [location.dir, ...(location.legacy === undefined ? [] : [location.legacy])]) {
    const pid = readPidFile(daemonPaths(dir).pidFile);
    if (pid !== undefined) return isProcessAlive(pid) ? undefined : { pid, stateDir: dir };
  }
  return undefined;
}

/** What a command finds where its daemon should be. */
export type FoundDaemon =
  | { state: 'running'; client: DaemonClient }
  /** Ended without stopping (killed, crashed): a new daemon restores its sessions. */
  | { state: 'crashed'; pid: number }
  | { state: 'none' };

/**
 * The daemon at `location`: the one that answers; else the one that crashed there (or in the old
 * place: the new one restores its sessions); else none. A live pid that does not answer — starting,
 * or hung — fails with DAEMON_UNAVAILABLE: a second daemon is never started beside a live one.
 */
export async function findDaemon(location: StateLocation): Promise<FoundDaemon> {
  const dir = stateDirInUse(location);
  const client = new DaemonClient({ stateDir: dir });
  if (await client.isRunning()) return { state: 'running', client };
  const pid = readPidFile(daemonPaths(dir).pidFile) ?? crashedDaemon(location)?.pid;
  if (pid === undefined) return { state: 'none' };
  if (isProcessAlive(pid)) {
    throw new VaultError('DAEMON_UNAVAILABLE', `the vault daemon (pid ${pid}) does not answer on its socket`, {
      hint: `wait a moment and try again; see its log at ${client.logFile}`,
    });
  }
  return { state: 'crashed', pid };
}

/** The sockets, daemon.json and pid file of a daemon that has ended (the pid file last: it says one was here). Its log stays. */
export function removeDaemonFiles(stateDir: string): void {
  const paths = daemonPaths(stateDir);
  for (const file of [paths.socket, paths.relaySocket, paths.stateFile, paths.pidFile]) rmSync(file, { force: true });
}

/**
 * After a daemon started in the new place: the pid file, socket and daemon.json a daemon killed in
 * the old place left there (its sessions were moved into the new daemon). Only while the pid file
 * names a process that has ended; the old log stays, as that daemon's audit trail.
 */
export function removeLegacyLeftovers(location: StateLocation): void {
  if (location.legacy === undefined) return;
  const pid = readPidFile(daemonPaths(location.legacy).pidFile);
  if (pid === undefined || isProcessAlive(pid)) return;
  removeDaemonFiles(location.legacy);
}
