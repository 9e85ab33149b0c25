import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { daemonSessionsKeyName, type Keyring } from '@vault/core';
import type { SessionKind } from './session.js';

/**
 * What a daemon needs to bring a session back after it was killed: the id and token its clients
 * hold, where it listened, what it was started with, and the credentials it was serving (so a
 * restored session answers at once, with no STS call, even while STS is unreachable). The token
 * and the credentials are secrets, so a record is only ever written to the keyring — encrypted
 * (JWE) by the file backend, held by the Secret Service or Keychain otherwise — never to a plain
 * file, a log line or a message.
 */
export interface SessionRecord {
  version: 1;
  id: string;
  token: string;
  profile: string;
  kind: SessionKind;
  lazy: boolean;
  /** Epoch ms, so `vault session ls` keeps the session's age. */
  createdAt: number;
  /** ecs: the daemon's credential port (part of the URI); imds: the session's own listener port. */
  port: number;
  /** `--duration` as given. */
  durationSeconds?: number;
  /** `--region` as given (the source request). */
  requestedRegion?: string;
  /** `--no-session` as given: the restored source must not switch to GetSessionToken. */
  noSession?: boolean;
  /** The region the session hands out (profile or override), for listings before the source is back. */
  region?: string;
  /** The `vault exec --server` process the session belongs to; a restore drops it when that is gone. */
  owner?: SessionOwner;
  /** When the MFA session behind it ends (epoch ms), as last known. */
  mfaExpiration?: number;
  /** The credentials being served when the record was written. */
  credentials?: StoredServedCredentials;
}

export interface SessionOwner {
  pid: number;
  /** /proc/PID/stat field 22 (clock ticks since boot) on Linux: tells a reused pid from the owner. */
  startTime?: string;
}

export interface StoredServedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** Epoch ms. */
  expiration: number;
  /** Epoch ms: when the daemon fetched them (IMDS LastUpdated, refresh timing). */
  fetchedAt: number;
}

/** Where the daemon keeps its session records: the whole set, written at once. */
export interface SessionStore {
  /** Every record of this daemon (its state directory); malformed ones are reported and skipped. */
  load(): Promise<SessionLoadResult>;
  /** Replaces the stored set atomically; an empty set removes it. */
  save(records: readonly SessionRecord[]): Promise<void>;
  /** Forgets every record; true when something was removed. */
  clear(): Promise<boolean>;
}

export interface SessionLoadResult {
  records: SessionRecord[];
  /** Records that could not be used, by session id (`*`: the whole item), with the reason (no secret in it). */
  skipped: Array<{ id: string; reason: string }>;
}

/** A short, stable name for a state directory: daemons with different state dirs share a keyring safely. */
export function storeScope(stateDir: string): string {
  return createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 16);
}

const ID = /^[0-9a-f]{1,64}$/;
/** newSessionToken's alphabet (base64url); never CR or LF. */
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65_535;
}

function isText(value: unknown, max = 256): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max;
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

/**
 * Checks a record read back from the keyring field by field: a damaged or foreign item must never
 * put an odd token on the wire or a listener on an odd port. Returns the reason it is refused.
 */
export function validateRecord(value: unknown): { record: SessionRecord } | { reason: string } {
  if (typeof value !== 'object' || value === null) return { reason: 'not an object' };
  const r = value as Record<string, unknown>;
  if (r.version !== 1) return { reason: `unknown record version ${JSON.stringify(r.version)}` };
  if (typeof r.id !== 'string' || !ID.test(r.id)) return { reason: 'bad session id' };
  if (typeof r.token !== 'string' || !TOKEN.test(r.token)) return { reason: 'bad token' };
  if (!isText(r.profile)) return { reason: 'bad profile' };
  if (r.kind !== 'ecs' && r.kind !== 'imds') return { reason: 'bad kind' };
  if (typeof r.lazy !== 'boolean') return { reason: 'bad lazy flag' };
  if (!isTime(r.createdAt)) return { reason: 'bad creation time' };
  if (!isPort(r.port)) return { reason: 'bad port' };
  if (r.durationSeconds !== undefined && !(Number.isInteger(r.durationSeconds) && (r.durationSeconds as number) >= 900 && (r.durationSeconds as number) <= 43_200)) {
    return { reason: 'bad duration' };
  }
  if (r.noSession !== undefined && typeof r.noSession !== 'boolean') return { reason: 'bad no-session flag' };
  for (const name of ['requestedRegion', 'region'] as const) {
    if (r[name] !== undefined && !(typeof r[name] === 'string' && /^[a-z0-9-]{1,32}$/.test(r[name] as string))) return { reason: `bad ${name}` };
  }
  if (r.owner !== undefined) {
    const o = r.owner as Record<string, unknown> | null;
    if (typeof o !== 'object' || o === null || !Number.isInteger(o.pid) || (o.pid as number) <= 0) return { reason: 'bad owner' };
    if (o.startTime !== undefined && !(typeof o.startTime === 'string' && /^\d{1,20}$/.test(o.startTime))) return { reason: 'bad owner' };
  }
  if (r.mfaExpiration !== undefined && !isTime(r.mfaExpiration)) return { reason: 'bad MFA expiration' };
  if (r.credentials !== undefined) {
    const c = r.credentials as Record<string, unknown> | null;
    if (
      typeof c !== 'object' ||
      c === null ||
      !isText(c.accessKeyId, 128) ||
      !isText(c.secretAccessKey, 1024) ||
      !isText(c.sessionToken, 8192) ||
      !isTime(c.expiration) ||
      !isTime(c.fetchedAt)
    ) {
      return { reason: 'bad credentials' };
    }
  }
  return { record: value as SessionRecord };
}

/**
 * Session records as one keyring item per daemon (`sts.VaultDaemonSessions,…`, see
 * daemonSessionsKeyName), holding `{version: 1, sessions: [...]}`. One item rather than one per
 * session because a restore is on the clock — clients are failing until it is done — and each item
 * costs the file backend one key derivation (PBKDF2, ~0.2 s here): one item restores any number of
 * sessions for the price of one. Writes are rarer than they look (start, stop, and a refresh
 * every ~45 min per session), come from the daemon alone — the one process that owns the state
 * directory, holding the whole set in memory — and are coalesced, so no read-modify-write is
 * ever needed. The keyring is opened on first use.
 */
export class KeyringSessionStore implements SessionStore {
  readonly scope: string;
  readonly key: string;

  constructor(
    private readonly keyring: () => Promise<Keyring>,
    stateDir: string,
  ) {
    this.scope = storeScope(stateDir);
    this.key = daemonSessionsKeyName(this.scope);
  }

  async load(): Promise<SessionLoadResult> {
    const keyring = await this.keyring();
    const result: SessionLoadResult = { records: [], skipped: [] };
    // Nothing stored (the usual start): the file backend finds no file and derives no key.
    const raw = await keyring.get(this.key);
    if (raw === undefined) return result;
    let parsed: { version?: unknown; sessions?: unknown } | undefined;
    try {
      parsed = JSON.parse(raw) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || parsed.version !== 1 || !Array.isArray(parsed.sessions)) {
      result.skipped.push({ id: '*', reason: 'the stored sessions are malformed; removed' });
      await keyring.remove(this.key).catch(() => false);
      return result;
    }
    const seen = new Set<string>();
    for (const entry of parsed.sessions as unknown[]) {
      const checked = validateRecord(entry);
      const id = typeof (entry as { id?: unknown } | null)?.id === 'string' && ID.test((entry as { id: string }).id) ? (entry as { id: string }).id : '?';
      if ('reason' in checked) {
        result.skipped.push({ id, reason: `malformed record (${checked.reason})` });
        continue;
      }
      if (seen.has(checked.record.id)) {
        result.skipped.push({ id, reason: 'a second record with the same id' });
        continue;
      }
      seen.add(checked.record.id);
      result.records.push(checked.record);
    }
    result.records.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return result;
  }

  async save(records: readonly SessionRecord[]): Promise<void> {
    const keyring = await this.keyring();
    if (records.length === 0) {
      await keyring.remove(this.key);
      return;
    }
    await keyring.set(this.key, JSON.stringify({ version: 1, sessions: records }), `vault daemon sessions (${records.length})`);
  }

  async clear(): Promise<boolean> {
    return (await this.keyring()).remove(this.key);
  }
}
