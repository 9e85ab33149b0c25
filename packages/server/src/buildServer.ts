import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { systemClock, type Clock } from '@vault/core';
import { createHttpApp, notFound } from './httpApp.js';
import { AuditLog, silentLogger, type Logger } from './logging.js';
import { noPeerPid, type PeerPidResolver } from './peerPid.js';
import { defaultPeerUidGate, type PeerUidGate } from './peerUid.js';
import { ContainerCredentialRoute, containerFastPath, containerRoutes, loopbackGuards, type SessionLookup } from './routes/container.js';
import { ImdsCredentialRoute, ImdsTokens, imdsFastPath, imdsRoutes, imdsTokenKey } from './routes/imds.js';
import type { Session } from './sessions/session.js';

/** The listener's port, or a function giving it (a port of 0 is only known after listen). */
export type PortSource = number | (() => number);

export interface BuildServerOptions {
  /** Sessions by id (the daemon's SessionRegistry). */
  sessions: SessionLookup;
  /** The port clients were given: the Host header must be exactly `127.0.0.1:PORT`. */
  port: PortSource;
  logger?: Logger;
  /** Audit trail; built from `logger` when absent. */
  audit?: AuditLog;
  /** Client pid lookup for audit lines: true (the OS's), false (off), or a resolver. Default true. */
  peerPids?: boolean | PeerPidResolver;
  /** Serve the hot request before fastify routes it (see containerFastPath). Default true. */
  fastPath?: boolean;
  /**
   * Serve only the daemon's own user (see ProcPeerUidGate): true (this OS's check, open where the
   * OS cannot tell), false (everyone: tests that use inject(), which has no connection), or a gate.
   * Default true.
   */
  peerUids?: boolean | PeerUidGate;
}

export const LISTEN_HOST = '127.0.0.1';

function gateOf(option: boolean | PeerUidGate | undefined): PeerUidGate | undefined {
  return option === false ? undefined : option === true || option === undefined ? defaultPeerUidGate() : option;
}

/** `127.0.0.1:PORT`: the only Host a credential listener answers (DNS rebinding). */
export function hostHeaderFor(port: PortSource): () => string {
  if (typeof port === 'number') {
    const fixed = `${LISTEN_HOST}:${port}`;
    return () => fixed;
  }
  let cachedPort = -1;
  let cached = '';
  return () => {
    const p = port();
    if (p !== cachedPort) {
      cachedPort = p;
      cached = `${LISTEN_HOST}:${p}`;
    }
    return cached;
  };
}

/**
 * The credential server (ECS container routes of every session). Never listens: the daemon's
 * start function does, and tests use `app.inject()`.
 */
export function buildServer(options: BuildServerOptions): FastifyInstance {
  const logger = options.logger ?? options.audit?.logger;
  const audit = options.audit ?? new AuditLog(logger ?? silentLogger(), options.peerPids ?? true);
  // One ContainerCredentialRoute: the fast path and the fastify routes answer through it.
  const routes = { sessions: options.sessions, route: new ContainerCredentialRoute({ guards: loopbackGuards(hostHeaderFor(options.port)), audit }) };
  let closing = false;
  const fastPath = options.fastPath === false ? undefined : containerFastPath({ ...routes, closing: () => closing });
  const peerUids = gateOf(options.peerUids);
  const app = createHttpApp({ logger, ...(fastPath ? { fastPath } : {}), ...(peerUids ? { peerUids } : {}) });
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.setNotFoundHandler(notFound(['GET']));
  watchConnections(app, audit);
  void app.register(containerRoutes, routes);
  return app;
}

/** Starts each connection's pid lookup as it is accepted (see ProcPeerPidResolver). */
function watchConnections(app: FastifyInstance, audit: AuditLog): void {
  if (audit.pids === noPeerPid) return;
  app.server.on('connection', (socket: Socket) => {
    void audit.pids.lookup(socket);
  });
}

export interface BuildImdsServerOptions {
  /** The port of this IMDS listener (each IMDS session has its own). */
  port: PortSource;
  logger?: Logger;
  audit?: AuditLog;
  peerPids?: boolean | PeerPidResolver;
  clock?: Clock;
  roleName?: string;
  /** Serve the hot request before fastify routes it (see imdsFastPath). Default true. */
  fastPath?: boolean;
  /** As BuildServerOptions.peerUids. Default true. */
  peerUids?: boolean | PeerUidGate;
}

/**
 * The IMDSv2 emulation of one session. IMDS paths carry no session id, so each IMDS session gets
 * a listener of its own; clients find it through `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
 */
export function buildImdsServer(session: Session, options: BuildImdsServerOptions): FastifyInstance {
  const logger = options.logger ?? options.audit?.logger;
  const audit = options.audit ?? new AuditLog(logger ?? silentLogger(), options.peerPids ?? true);
  const clock = options.clock ?? systemClock;
  const expectedHost = hostHeaderFor(options.port);
  const tokens = new ImdsTokens(clock, imdsTokenKey(session.token));
  // One ImdsCredentialRoute: the fast path and the fastify routes answer through it.
  const route = new ImdsCredentialRoute({ session, expectedHost, clock, audit, tokens, ...(options.roleName ? { roleName: options.roleName } : {}) });
  const routes = { expectedHost, tokens, route };
  let closing = false;
  const fastPath = options.fastPath === false ? undefined : imdsFastPath({ route, closing: () => closing });
  const peerUids = gateOf(options.peerUids);
  const app = createHttpApp({ logger, ...(fastPath ? { fastPath } : {}), ...(peerUids ? { peerUids } : {}) });
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.setNotFoundHandler(notFound(['GET', 'PUT']));
  watchConnections(app, audit);
  void app.register(imdsRoutes, routes);
  return app;
}
