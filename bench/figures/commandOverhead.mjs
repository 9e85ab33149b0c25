import { AWS_CLI } from '../lib/machine.mjs';
import { run } from '../lib/proc.mjs';
import { interleaved, median, round } from '../lib/stats.mjs';

/**
 * Figures 3 and 4: what a command costs with cached credentials, on each Node in `nodes` (the
 * machine's and Node 24, bench/lib/nodes.mjs). Every side is a fresh process, timed from spawn to
 * exit, one after another in rotating order, `rounds` times; medians.
 *   floor:  node -e 0 on the same Node (starting Node at all)
 *   AWS CLI: /usr/bin/aws configure export-credentials --profile cli-account-a, answered from its
 *            own warm cache (~/.aws/cli/cache) and a plain-text key — what vault replaces.
 */
export async function commandOverhead(machine, { rounds, nodes = [{ label: `Node ${process.versions.node.split('.')[0]}`, bin: process.execPath }] }) {
  const backends = machine.keychain ? ['keychain', 'file'] : ['file'];
  // Every Node's sides in one interleaved set, so a busy moment on the machine hits them alike.
  const sides = {
    awsCli: () => time(AWS_CLI, ['configure', 'export-credentials', '--profile', 'cli-account-a'], machine.awsCliEnv()),
  };
  for (const { label, bin } of nodes) {
    sides[`${label} floor`] = () => time(bin, ['-e', '0'], process.env);
    for (const backend of backends) {
      // "no daemon": a state directory where none runs; "daemon": the backend's own, with a live session.
      const noDaemon = machine.env(backend, { VAULT_STATE_DIR: machine.stateDir(`.vault-none-${backend}`) });
      const withDaemon = machine.env(backend);
      sides[`${label} exec ${backend}`] = () => time(bin, machine.vaultArgs(['exec', 'account-a', '--', 'true']), noDaemon);
      sides[`${label} exec ${backend} +daemon`] = () => time(bin, machine.vaultArgs(['exec', 'account-a', '--', 'true']), withDaemon);
      sides[`${label} export ${backend}`] = () => time(bin, machine.vaultArgs(['export', '--format', 'json', 'account-a']), noDaemon);
      sides[`${label} export ${backend} +daemon`] = () => time(bin, machine.vaultArgs(['export', '--format', 'json', 'account-a']), withDaemon);
    }
  }
  const before = machine.mintingCalls();
  // One warm-up round (page cache, keyring unlock), not counted.
  await interleaved(1, sides);
  const samples = await interleaved(rounds, sides);
  const stsCalls = machine.mintingCalls() - before;
  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));

  const rows = [{ figure: 'AWS CLI: aws configure export-credentials (warm cache)', vault: null, reference: round(med.awsCli, 1), unit: 'ms' }];
  for (const { label } of nodes) {
    const floor = med[`${label} floor`];
    rows.push({ figure: `${label} floor: node -e 0`, vault: null, reference: round(floor, 1), unit: 'ms' });
    for (const backend of backends) {
      const target = backend === 'keychain';
      for (const [what, key] of [
        [`exec PROFILE -- true, ${backend}, no daemon`, `exec ${backend}`],
        [`exec PROFILE -- true, ${backend}, daemon running`, `exec ${backend} +daemon`],
        [`export --format json, ${backend}, no daemon`, `export ${backend}`],
        [`export --format json, ${backend}, live daemon session`, `export ${backend} +daemon`],
      ]) {
        rows.push(ratioRow(`${label}: ${what} / floor`, med[`${label} ${key}`], floor, target ? { max: 2.0 } : undefined));
        rows.push(ratioRow(`${label}: ${what} / AWS CLI`, med[`${label} ${key}`], med.awsCli, target ? { max: 0.3 } : undefined));
      }
    }
  }
  rows.push({ figure: 'STS calls during the timed commands', vault: stsCalls, reference: null, unit: 'calls', target: { max: 0 }, pass: stsCalls === 0 });
  return { rows, samples, rounds };
}

function ratioRow(figure, vaultMs, referenceMs, target) {
  const ratio = vaultMs / referenceMs;
  return {
    figure,
    vault: round(vaultMs, 1),
    reference: round(referenceMs, 1),
    unit: 'ms',
    ratio: round(ratio, 2),
    target,
    pass: target ? ratio <= target.max : undefined,
  };
}

async function time(command, args, env) {
  const result = await run(command, args, { env });
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  return result.ms;
}
