export * from './credentialSource.js';
export * from './coreSource.js';
export * from './wire.js';
export * from './buildServer.js';
export * from './daemon/startDaemon.js';
export { prepareStateDir, type DaemonStateFile } from './daemon/stateDirectory.js';
export type { RestoreSummary } from './daemon/restoreAtStart.js';
export { OWNER_CHECK_MS } from './sessions/orphanReaping.js';
export * from './client.js';
export * from './control/types.js';
export { buildControlServer, type ControlServerOptions } from './control/controlServer.js';
export { statusForCode } from './control/controlErrors.js';
export { containerPath, type SessionLookup } from './routes/container.js';
export { ImdsTokens, imdsRoleName, instanceIdOf, IMDS_TOKEN_MAX_TTL_SECONDS, IMDS_TOKEN_MIN_TTL_SECONDS } from './routes/imds.js';
export * from './sessions/refreshingCredentials.js';
export * from './sessions/scheduler.js';
export * from './sessions/session.js';
export * from './sessions/sessionRegistry.js';
// Renamed on the way out: @vault/core has a Logger and a silentLogger of its own.
export {
  AuditLog,
  AUDIT_REDACT_PATHS,
  createLogger,
  openLogFile,
  silentLogger as silentServerLogger,
  type CredentialRoute,
  type Logger as ServerLogger,
} from './logging.js';
export { defaultPeerPidResolver, isLoopback, noPeerPid, ProcPeerPidResolver, type PeerPidResolver, type PeerSocket } from './peerPid.js';
export { canTellPeerUids, defaultPeerUidGate, openPeerUidGate, ProcPeerUidGate, USER_NOT_ALLOWED_MESSAGE, type PeerUidDecision, type PeerUidGate } from './peerUid.js';
export { MAX_HEADER_BYTES, HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from './httpApp.js';
export { SERVER_VERSION } from './version.js';
export { buildRelaySocketServer, openRelaySocket, type RelaySocket, type RelaySocketOptions } from './relay/relaySocket.js';
export * from './relay/relayProtocol.js';
