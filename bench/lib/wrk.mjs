import { run } from './proc.mjs';

export const LOAD_GENERATOR = 'wrk';

/**
 * wrk (a separate process; Debian's `wrk`) against one URL with keep-alive connections.
 * Returns requests/s, latency percentiles in ms, and how many answers were not 2xx/3xx.
 */
export async function wrk(url, { connections = 64, threads = 2, seconds = 10, headers = {} } = {}) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  args.push(url);
  const result = await run('wrk', args);
  if (result.code !== 0) throw new Error(`wrk exited ${result.code}: ${result.stderr.trim()}`);
  return parseWrk(result.stdout);
}

export function parseWrk(text) {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const percentile = (p) => toMs(new RegExp(`^\\s+${p}%\\s+([\\d.]+\\w+)`, 'm').exec(text)?.[1]);
  const latencyLine = /^\s+Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)/m.exec(text);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1]);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    rps,
    requests,
    p50: percentile(50),
    p99: percentile(99),
    max: toMs(latencyLine?.[3]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0),
    socketErrors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

function toMs(value) {
  if (!value) return NaN;
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}
