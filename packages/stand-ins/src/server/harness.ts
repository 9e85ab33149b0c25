import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { ManualClock } from '@vault/core';
import {
  AuditLog,
  buildImdsServer,
  buildServer,
  createLogger,
  ManualScheduler,
  SessionRegistry,
  type CreateSessionRequest,
  type PeerPidResolver,
  type ServerLogger as Logger,
  type Session,
} from '@vault/server';
import { FakeSourceFactory, type FakeCredentialSource } from './fakes.js';

const HOUR = 3_600_000;

/** A pino logger whose lines land in an array (for redaction and audit assertions). */
export function captureLogger(): { logger: Logger; lines: string[]; records: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const logger = createLogger(stream as unknown as Parameters<typeof createLogger>[0]);
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export const TEST_PORT = 47_123;
export const TEST_HOST = `127.0.0.1:${TEST_PORT}`;
export const IMDS_TEST_PORT = 47_124;

export interface HarnessOptions {
  roleDurationMs?: number;
  mfaDurationMs?: number | undefined;
  region?: string | undefined;
  peerPids?: boolean | PeerPidResolver;
  /** Without it sessions refresh on request only. Default true. */
  scheduler?: boolean;
}

/**
 * Everything the server tests need: a ManualClock and ManualScheduler, a fake source factory,
 * a registry, the credential app (never listening) and a captured log.
 */
export function createHarness(options: HarnessOptions = {}) {
  const clock = new ManualClock();
  const scheduler = new ManualScheduler(clock);
  const factory = new FakeSourceFactory({
    clock,
    roleDurationMs: options.roleDurationMs ?? HOUR,
    mfaDurationMs: 'mfaDurationMs' in options ? options.mfaDurationMs : 8 * HOUR,
    ...('region' in options ? { region: options.region } : {}),
  });
  const log = captureLogger();
  const audit = new AuditLog(log.logger, options.peerPids ?? false);
  const registry = new SessionRegistry({
    sourceFactory: factory,
    clock,
    ...(options.scheduler === false ? {} : { scheduler }),
    random: () => 0.5,
    logger: log.logger,
    audit,
  });
  const app = buildServer({ sessions: registry, port: TEST_PORT, audit, peerUids: false });

  const start = async (request: Partial<CreateSessionRequest> = {}): Promise<{ session: Session; source: FakeCredentialSource }> => {
    const session = await registry.create({ profile: 'account-a', kind: 'ecs', ...request });
    return { session, source: factory.last };
  };

  /** GET the container route the way an SDK does. */
  const getCreds = (session: Session, init: { path?: string; headers?: Record<string, string | undefined>; method?: string; remoteAddress?: string; payload?: string } = {}): Promise<LightMyRequestResponse> => {
    const headers: Record<string, string> = { host: TEST_HOST, authorization: session.token };
    for (const [k, v] of Object.entries(init.headers ?? {})) {
      if (v === undefined) delete headers[k];
      else headers[k] = v;
    }
    return app.inject({
      method: (init.method ?? 'GET') as 'GET',
      url: init.path ?? `/creds/${session.id}`,
      headers,
      ...(init.remoteAddress ? { remoteAddress: init.remoteAddress } : {}),
      ...(init.payload !== undefined ? { payload: init.payload } : {}),
    });
  };

  return { clock, scheduler, factory, registry, app, audit, log, start, getCreds };
}

/** An IMDS app for a session, with helpers that speak IMDSv2. */
export function imdsClient(session: Session, clock: ManualClock, audit: AuditLog, port = IMDS_TEST_PORT) {
  const app: FastifyInstance = buildImdsServer(session, { port, audit, clock, peerUids: false });
  const host = `127.0.0.1:${port}`;
  const token = async (ttl = '21600'): Promise<string> => {
    const res = await app.inject({ method: 'PUT', url: '/latest/api/token', headers: { host, 'x-aws-ec2-metadata-token-ttl-seconds': ttl } });
    if (res.statusCode !== 200) throw new Error(`token: ${res.statusCode} ${res.body}`);
    return res.body;
  };
  const get = async (url: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url, headers: { host, 'x-aws-ec2-metadata-token': await token(), ...headers } });
  return { app, host, token, get };
}
