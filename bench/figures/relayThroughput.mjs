import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { VAULT_BIN } from '../lib/machine.mjs';
import { interleaved, median, round } from '../lib/stats.mjs';
import { wrk } from '../lib/wrk.mjs';

/**
 * Figure: the container route through `vault relay` against the same route direct. The daemon's
 * live account-a session; the relay (its own process, as in its container) listens on a free
 * 127.0.0.1 port here, since a benchmark makes no network namespace, and forwards to the daemon's
 * relay.sock as it does at 169.254.170.2. wrk with 64 keep-alive connections on each, rounds
 * alternating. The relay adds one HTTP hop over a Unix socket, so it is slower by design; what
 * counts is that a container's SDK, which asks about once per refresh, is never kept waiting.
 */
export async function relayThroughput(machine, { rounds, seconds, backend }) {
  const ecs = machine.sessions[backend];
  const status = JSON.parse((await machine.vault(backend, ['server', 'status', '--format', 'json'])).stdout);
  if (!status.relaySocket) throw new Error('the daemon reports no relaySocket');
  const port = await freePort();
  const relay = await startRelay(machine, backend, status.relaySocket, port);
  const direct = ecs.env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
  const viaRelay = `http://127.0.0.1:${port}${ecs.relativeUri}`;
  const headers = { Authorization: ecs.token };
  try {
    const check = await fetch(viaRelay, { headers });
    if (check.status !== 200) throw new Error(`GET through the relay answered ${check.status}: ${await check.text()}`);
    const samples = await interleaved(rounds, {
      relay: () => wrk(viaRelay, { seconds, headers }),
      direct: () => wrk(direct, { seconds, headers }),
    });
    const bad = samples.relay.reduce((n, s) => n + s.non2xx + s.socketErrors, 0);
    const r = { rps: median(samples.relay.map((s) => s.rps)), p99: median(samples.relay.map((s) => s.p99)) };
    const d = { rps: median(samples.direct.map((s) => s.rps)), p99: median(samples.direct.map((s) => s.p99)) };
    const rows = [
      {
        figure: 'container route through vault relay vs direct: requests/s, 64 connections',
        vault: round(r.rps, 0),
        reference: round(d.rps, 0),
        unit: 'req/s',
        ratio: round(r.rps / d.rps, 2),
        // One extra hop (HTTP in, HTTP over the Unix socket, back): a third of direct is ample
        // for clients that ask once every ~40 minutes each.
        target: { min: 0.33 },
        pass: r.rps / d.rps >= 0.33 && bad === 0,
      },
      { figure: 'container route through vault relay: p99 latency (reference: direct)', vault: round(r.p99, 2), reference: round(d.p99, 2), unit: 'ms', target: { max: 20, unit: 'ms' }, pass: r.p99 <= 20 },
    ];
    return { rows, details: { samples, failedAnswers: bad }, loadGenerator: 'wrk -t2 -c64 (keep-alive) --latency', rounds, seconds };
  } finally {
    relay.kill('SIGTERM');
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function startRelay(machine, backend, socket, port) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VAULT_BIN, 'relay', '--socket', socket, '--listen', `127.0.0.1:${port}`], { env: machine.env(backend), stdio: ['ignore', 'ignore', 'pipe'] });
    child.on('error', reject);
    child.once('exit', (code) => reject(new Error(`vault relay exited (${code})`)));
    createInterface({ input: child.stderr }).on('line', (line) => {
      if (line.startsWith('vault relay: listening')) resolve(child);
      else process.stderr.write(`${line}\n`);
    });
  });
}
