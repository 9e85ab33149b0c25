import { AuditLog, openLogFile, type LineStream, type Logger } from '../logging.js';
import type { PeerPidResolver } from '../peerPid.js';

/** The daemon's log and audit trail, and how to close the log file when it opened one. */
export interface DaemonLog {
  logger: Logger;
  audit: AuditLog;
  close: () => Promise<void>;
}

/** The given logger, or pino JSON in `daemon.log` (0600), redacted; and the audit trail over it. */
export function openDaemonLog(logFile: string, given: Logger | undefined, peerPids: boolean | PeerPidResolver): DaemonLog {
  let close = async () => undefined as void;
  let stream: LineStream | undefined;
  let logger = given;
  if (!logger) {
    const opened = openLogFile(logFile);
    logger = opened.logger;
    close = opened.close;
    stream = opened.stream;
  }
  return { logger, audit: new AuditLog(logger, peerPids, stream), close };
}
