// The CLI loads this module alone (`@vault/server/client`) so that talking to the daemon never
// loads fastify: the daemon's life seen from outside (daemonLife/), the paths of its state
// directory, pid and process helpers, and the session store a daemon reads before fastify loads.
export {
  checkedStateLocation,
  checkStateLocation,
  daemonPaths,
  defaultStateDir,
  homeStateDir,
  stateDirInUse,
  stateLocation,
  type DaemonPaths,
  type StateDirSource,
  type StateLocation,
} from './paths.js';
export type * from './control/types.js';
export { isProcessAlive, readPidFile } from './processes.js';
export { DaemonClient, type DaemonClientOptions } from './daemonLife/daemonClient.js';
export { daemonLocationEnv, ensureDaemon, type EnsureDaemonOptions, type EnsureDaemonResult } from './daemonLife/ensureDaemon.js';
export { crashedDaemon, findDaemon, removeDaemonFiles, removeLegacyLeftovers, type FoundDaemon } from './daemonLife/findDaemon.js';
export { superviseDaemon, type DaemonWatch, type SuperviseDaemonOptions } from './daemonLife/superviseDaemon.js';
// Whether IMDS listeners can refuse other users here (the CLI notes when they cannot).
export { canTellPeerUids } from './peerUid.js';
// The session store is light too: a daemon starts reading its sessions before it loads fastify.
/** What the daemon asks of cached credentials it hands out as they are; the CLI asks the same before starting a session. */
export { UPSTREAM_MIN_LIFE_MS } from './sessions/refreshingCredentials.js';
export { KeyringSessionStore, storeScope, type SessionRecord, type SessionStore, type SessionLoadResult } from './sessions/sessionStore.js';
export { withMovedRecords } from './sessions/movedSessionStore.js';
