#!/usr/bin/env node
/**
 * `npm run bench`: every benchmark in bench/figures, side by side with its reference, interleaved
 * rounds, medians. Prints one table and writes it as JSON (and Markdown) under bench/results/.
 *
 *   node bench/run.mjs [--only NAME[,NAME]] [--quick]
 *
 * Needs a built tree (npm run build), wrk, /usr/bin/aws, and — for the keychain rows — a Secret
 * Service: without one it re-runs itself under scripts/with-keyring.sh (a throwaway gnome-keyring).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Machine, REPO } from './lib/machine.mjs';
import { formatMarkdown, formatTable } from './lib/table.mjs';
import { benchNodes } from './lib/nodes.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined;

if (process.env.VAULT_TEST_KEYCHAIN !== '1' && !process.env.VAULT_BENCH_NO_KEYRING) {
  const result = spawnSync('bash', [join(REPO, 'scripts/with-keyring.sh'), process.execPath, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}

const FIGURES = {
  burst: async (machine) => (await import('./figures/coldBurst.mjs')).coldBurst(machine, { rounds: 3, clients: 500, backend: 'file' }),
  memory: async (machine) => (await import('./figures/daemonMemory.mjs')).daemonMemory(machine, { backend: 'file' }),
  stsPerHour: async (machine) => (await import('./figures/stsPerHour.mjs')).stsPerHour(machine, { hours: 8 }),
  server: async (machine) =>
    (await import('./figures/serverThroughput.mjs')).serverThroughput(machine, {
      rounds: Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3)),
      seconds: Number(process.env.BENCH_SECONDS ?? (quick ? 3 : 10)),
      backend: 'file',
    }),
  relay: async (machine) =>
    (await import('./figures/relayThroughput.mjs')).relayThroughput(machine, {
      rounds: Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3)),
      seconds: Number(process.env.BENCH_SECONDS ?? (quick ? 3 : 10)),
      backend: 'file',
    }),
  commands: async (machine) => (await import('./figures/commandOverhead.mjs')).commandOverhead(machine, { rounds: quick ? 3 : 15, nodes: benchNodes() }),
  breakdown: async (machine) => (await import('./figures/execBreakdown.mjs')).execBreakdown(machine, { rounds: quick ? 5 : 15, nodes: benchNodes() }),
};

const started = Date.now();
const machine = await Machine.create({ burstRounds: 3 });
const results = {};
const rows = [];
try {
  for (const backend of machine.keychain ? ['keychain', 'file'] : ['file']) await machine.prime(backend);
  await machine.primeAwsCli('file');
  for (const [name, figure] of Object.entries(FIGURES)) {
    if (only && !only.includes(name)) continue;
    process.stderr.write(`bench: ${name}…\n`);
    const t = Date.now();
    const result = await figure(machine);
    results[name] = { ...result, seconds: Math.round((Date.now() - t) / 1000) };
    rows.push(...result.rows);
  }
} finally {
  await machine.close();
}

const report = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavg: loadavg() },
  seconds: Math.round((Date.now() - started) / 1000),
  rows,
  details: results,
};
console.log(formatTable(rows));
console.log(`\n${report.seconds} s on ${report.machine.cpus} CPUs (${report.machine.model}), Node ${process.version}`);
const dir = join(REPO, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(dir, 'latest.md'), `${formatMarkdown(rows)}\n`);
process.stderr.write(`bench: wrote bench/results/latest.json and latest.md\n`);
process.exitCode = rows.some((r) => r.pass === false) ? 1 : 0;
