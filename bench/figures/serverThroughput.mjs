import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { interleaved, median, round } from '../lib/stats.mjs';
import { wrk } from '../lib/wrk.mjs';

const REFERENCE = fileURLToPath(new URL('../lib/referenceServer.mjs', import.meta.url));

/**
 * Figure 1: the credential routes under load. A live session with cached credentials in the
 * running daemon (its own process), wrk with 64 keep-alive connections; the reference is a bare
 * node:http process answering the same bytes with no checks. Rounds alternate vault/reference.
 */
export async function serverThroughput(machine, { rounds, seconds, backend }) {
  const ecs = machine.sessions[backend];
  const imds = await machine.startSession(backend, ['--imds']);
  const imdsBase = imds.imdsEndpoint.replace(/\/$/, '');

  // Exactly what a client is sent, captured once, for the reference to send.
  const ecsBody = await get(ecs.env.AWS_CONTAINER_CREDENTIALS_FULL_URI, { authorization: ecs.token });
  const imdsToken = await (await fetch(`${imdsBase}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } })).text();
  const roleName = await get(`${imdsBase}/latest/meta-data/iam/security-credentials/`, { 'x-aws-ec2-metadata-token': imdsToken });
  const imdsUrl = `${imdsBase}/latest/meta-data/iam/security-credentials/${roleName}`;
  const imdsBody = await get(imdsUrl, { 'x-aws-ec2-metadata-token': imdsToken });

  const rows = [];
  const details = {};
  for (const [route, url, headers, body] of [
    ['container route (ECS)', ecs.env.AWS_CONTAINER_CREDENTIALS_FULL_URI, { Authorization: ecs.token }, ecsBody],
    ['IMDSv2 credential route', imdsUrl, { 'X-aws-ec2-metadata-token': imdsToken }, imdsBody],
  ]) {
    const bodyFile = join(machine.home, `reference-${rows.length}.json`);
    writeFileSync(bodyFile, body, { mode: 0o600 });
    const reference = await startReference(bodyFile);
    const referenceUrl = `http://127.0.0.1:${reference.port}${new URL(url).pathname}`;
    try {
      const samples = await interleaved(rounds, {
        vault: () => wrk(url, { seconds, headers }),
        reference: () => wrk(referenceUrl, { seconds, headers }),
      });
      const bad = samples.vault.reduce((n, s) => n + s.non2xx + s.socketErrors, 0);
      const v = { rps: median(samples.vault.map((s) => s.rps)), p99: median(samples.vault.map((s) => s.p99)), max: Math.max(...samples.vault.map((s) => s.max)) };
      const r = { rps: median(samples.reference.map((s) => s.rps)), p99: median(samples.reference.map((s) => s.p99)) };
      rows.push({
        figure: `${route}: requests/s, 64 connections`,
        vault: round(v.rps, 0),
        reference: round(r.rps, 0),
        unit: 'req/s',
        ratio: round(v.rps / r.rps, 2),
        target: { min: 0.85 },
        pass: v.rps / r.rps >= 0.85 && bad === 0,
      });
      rows.push({ figure: `${route}: p99 latency`, vault: round(v.p99, 2), reference: round(r.p99, 2), unit: 'ms', target: { max: 5, unit: 'ms' }, pass: v.p99 <= 5 });
      details[route] = { samples, failedAnswers: bad, maxLatencyMs: v.max };
    } finally {
      reference.stop();
    }
  }
  await machine.vault(backend, ['session', 'stop', imds.id]);
  return { rows, details, loadGenerator: 'wrk -t2 -c64 (keep-alive) --latency', rounds, seconds };
}

async function get(url, headers) {
  const res = await fetch(url, { headers });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  return res.text();
}

function startReference(bodyFile) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REFERENCE, bodyFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.on('error', reject);
    createInterface({ input: child.stdout }).once('line', (line) => resolve({ port: JSON.parse(line).port, stop: () => child.kill('SIGTERM') }));
  });
}
