import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from '../lib/machine.mjs';
import { median, round } from '../lib/stats.mjs';

const PRELOAD = join(REPO, 'bench/lib/execPhases.mjs');

/**
 * Where a cached `vault exec account-a -- true` spends its time (file backend, daemon running: the
 * case the issue measured), on each Node: vault runs with bench/lib/execPhases.mjs preloaded, which
 * marks on the wall clock when Node is up, the config file touched, each daemon request and
 * answer, and the spawn or execve; the bench marks the spawn of node and its exit. Each phase is the
 * median over `rounds` runs, with its share of the median total. The preload costs a little itself
 * (one more ES module); the plain totals are in the command rows.
 */
export async function execBreakdown(machine, { rounds, nodes }) {
  const rows = [];
  const details = {};
  for (const node of nodes) {
    const env = machine.env('file');
    const runs = [];
    await once(node.bin, machine.vaultArgs(['exec', 'account-a', '--', 'true']), env); // warm-up
    for (let i = 0; i < rounds; i += 1) runs.push(phasesOf(await once(node.bin, ['--import', PRELOAD, ...machine.vaultArgs(['exec', 'account-a', '--', 'true'])], env)));
    const names = Object.keys(runs[0]);
    const med = Object.fromEntries(names.map((n) => [n, median(runs.map((r) => r[n] ?? 0))]));
    const total = median(runs.map((r) => Object.values(r).reduce((a, b) => a + b, 0)));
    details[node.label] = { rounds, medians: med, total };
    rows.push({ figure: `exec PROFILE -- true, file, daemon running, ${node.label} (${node.version}), with the phase marks: total`, vault: round(total, 1), reference: null, unit: 'ms' });
    for (const name of names) rows.push({ figure: `  … ${name} (${Math.round((100 * med[name]) / total)}%)`, vault: round(med[name], 1), reference: null, unit: 'ms' });
  }
  return { rows, details };
}

/** One run: the wall-clock marks from the preload plus the bench's own start and end. */
function once(bin, args, env) {
  return new Promise((resolve, reject) => {
    const start = performance.timeOrigin + performance.now();
    const child = spawn(bin, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const end = performance.timeOrigin + performance.now();
      if (code !== 0) return reject(new Error(`vault exec exited ${code}: ${stderr.trim()}`));
      const line = /^VAULT_PHASES (.*)$/m.exec(stderr)?.[1];
      resolve({ start, end, marks: line ? JSON.parse(line) : [] });
    });
  });
}

function phasesOf({ start, end, marks }) {
  const first = (prefix) => marks.find(([n]) => n.startsWith(prefix))?.[1];
  const last = (prefix) => marks.filter(([n]) => n.startsWith(prefix)).at(-1)?.[1];
  const preload = first('preload');
  const config = first('config:');
  const request = first('daemon:request');
  const answered = last('daemon:answered');
  const launch = first('spawn') ?? first('execve');
  const childExit = first('child:exit');
  if ([preload, request, answered, launch].some((t) => t === undefined)) throw new Error(`missing phase marks: ${JSON.stringify(marks)}`);
  const phases = {};
  phases['node starts (process to first module)'] = preload - start;
  const afterModules = config !== undefined && config < request ? config : request;
  phases['vault modules load, argv parsed, context built'] = afterModules - preload;
  if (afterModules !== request) phases['config file read, profile resolved'] = request - afterModules;
  phases['daemon round trip (control socket)'] = answered - request;
  phases['environment built'] = launch - answered;
  if (first('execve') !== undefined) {
    phases['execve, the command runs, exits'] = end - launch;
  } else {
    phases['spawn, the command runs, exits'] = (childExit ?? end) - launch;
    phases['vault exits after its child'] = end - (childExit ?? end);
  }
  return phases;
}
