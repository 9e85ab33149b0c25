import { VaultError, type Clock } from '@vault/core';
import type { Logger } from '../logging.js';
import type { ImdsListener, Session } from './session.js';

// Restored sessions whose port could not be had back: their clients still use that port, so the
// session is `failed` (not moved) until `vault session renew` finds the port free again.

export interface PortFaultsInit {
  clock: Clock;
  logger: Logger;
  openImdsListener?: ((session: Session, port?: number) => Promise<ImdsListener>) | undefined;
  /** The daemon's credential port (what container session URIs name). */
  credentialPort?: (() => number) | undefined;
}

export class PortFaults {
  /** Restored sessions whose port could not be had: the port their clients still use. */
  private readonly wantedPorts = new Map<string, number>();

  constructor(private readonly init: PortFaultsInit) {}

  /** A restored session that cannot have its port back: `failed`, saying why and what to run. */
  markPortTaken(session: Session, port: number, why: string): void {
    this.wantedPorts.set(session.id, port);
    session.fault = {
      code: 'PORT_IN_USE',
      message: `session ${session.id} (profile ${session.profile}) could not be restored as it was: ${why}; its clients' endpoint no longer reaches it. Run \`vault session renew ${session.id}\` to try again, or stop it and start a new one`,
      at: this.init.clock.now(),
    };
    this.init.logger.error({ event: 'restore-port-failed', session: session.id, profile: session.profile, kind: session.kind, port }, 'restored session cannot listen on its port');
  }

  /** The port a session's record names: the one its clients use, even while it cannot be had. */
  recordedPort(session: Session): number {
    const wanted = this.wantedPorts.get(session.id);
    return session.kind === 'imds' ? (session.imds?.port ?? wanted ?? 0) : (wanted ?? this.init.credentialPort?.() ?? 0);
  }

  /** A restored session whose port was taken: listen on it again if it is free now (else DAEMON_UNAVAILABLE with the fault). */
  async retryPort(session: Session): Promise<void> {
    const wanted = this.wantedPorts.get(session.id);
    const fault = session.fault!;
    if (session.kind === 'imds' && wanted !== undefined && this.init.openImdsListener) {
      try {
        session.imds = await this.init.openImdsListener(session, wanted);
      } catch {
        throw new VaultError('DAEMON_UNAVAILABLE', fault.message);
      }
    } else if (session.kind !== 'ecs' || wanted !== this.init.credentialPort?.()) {
      throw new VaultError('DAEMON_UNAVAILABLE', fault.message);
    }
    session.fault = undefined;
    this.wantedPorts.delete(session.id);
  }

  /** A stopped session's port is nobody's concern any more. */
  forget(id: string): void {
    this.wantedPorts.delete(id);
  }
}
