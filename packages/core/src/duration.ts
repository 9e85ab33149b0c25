import { VaultError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses durations the way aws-vault users write them (Go syntax: `1h`, `15m`, `1h30m`, `900s`)
 * or plain seconds (`3600`). Returns milliseconds.
 */
export function parseDurationMs(raw: string, what: string): number {
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new VaultError('USAGE', `${what} "${raw}" is not a duration`, { hint: 'write it like 1h, 15m, 1h30m or 3600' });
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * UNIT_MS[unit as string]!, 0);
}

export function formatDuration(ms: number): string {
  if (ms <= 0) return 'expired';
  const totalMinutes = Math.floor(ms / 60_000);
  const hours = Math.floor(totalMinutes / 60);
  const minutes = totalMinutes % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`;
  if (totalMinutes > 0) return `${minutes}m`;
  return `${Math.floor(ms / 1000)}s`;
}
