import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './machine.mjs';

/**
 * The Nodes the command figures run on: the one running the bench (the machine's, Node 20 in CI)
 * and Node 24 from the registry's node package (scripts/node24.sh, the same the test suite uses).
 * VAULT_BENCH_NODES=current skips the second.
 */
export function benchNodes() {
  const nodes = [{ label: `Node ${process.versions.node.split('.')[0]}`, version: process.version, bin: process.execPath }];
  if (process.env.VAULT_BENCH_NODES === 'current') return nodes;
  const found = spawnSync('bash', [join(REPO, 'scripts/node24.sh')], { encoding: 'utf8' });
  if (found.status !== 0) {
    process.stderr.write(`bench: no Node 24 (${found.stderr.trim()}); command figures on ${process.version} only\n`);
    return nodes;
  }
  const bin = join(found.stdout.trim(), 'node');
  const version = spawnSync(bin, ['-v'], { encoding: 'utf8' }).stdout.trim();
  if (version !== process.version) nodes.push({ label: `Node ${version.slice(1).split('.')[0]}`, version, bin });
  return nodes;
}
