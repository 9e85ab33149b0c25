import { AWS_CLI } from '../lib/machine.mjs';
import { run } from '../lib/proc.mjs';
import { interleaved, median, round } from '../lib/stats.mjs';

/**
 * Figures 3 and 4: what a command costs with cached credentials. Every side is a fresh process,
 * timed from spawn to exit, one after another in rotating order, `rounds` times; medians.
 *   floor:  node -e 0 (starting Node at all)
 *   AWS CLI: /usr/bin/aws configure export-credentials --profile cli-account-a, answered from its
 *            own warm cache (~/.aws/cli/cache) and a plain-text key — what vault replaces.
 */
export async function commandOverhead(machine, { rounds }) {
  const backends = machine.keychain ? ['keychain', 'file'] : ['file'];
  const sides = {
    floor: () => time(process.execPath, ['-e', '0'], process.env),
    awsCli: () => time(AWS_CLI, ['configure', 'export-credentials', '--profile', 'cli-account-a'], machine.awsCliEnv()),
  };
  for (const backend of backends) {
    // "no daemon": a state directory where none runs; "daemon": the backend's own, with a live session.
    const noDaemon = machine.env(backend, { VAULT_STATE_DIR: machine.stateDir(`.vault-none-${backend}`) });
    const withDaemon = machine.env(backend);
    sides[`exec ${backend}`] = () => time(process.execPath, machine.vaultArgs(['exec', 'account-a', '--', 'true']), noDaemon);
    sides[`exec ${backend} +daemon`] = () => time(process.execPath, machine.vaultArgs(['exec', 'account-a', '--', 'true']), withDaemon);
    sides[`export ${backend}`] = () => time(process.execPath, machine.vaultArgs(['export', '--format', 'json', 'account-a']), noDaemon);
    sides[`export ${backend} +daemon`] = () => time(process.execPath, machine.vaultArgs(['export', '--format', 'json', 'account-a']), withDaemon);
  }
  const before = machine.mintingCalls();
  // One warm-up round (page cache, keyring unlock), not counted.
  await interleaved(1, sides);
  const samples = await interleaved(rounds, sides);
  const stsCalls = machine.mintingCalls() - before;
  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));

  const rows = [
    { figure: 'floor: node -e 0', vault: null, reference: round(med.floor, 1), unit: 'ms' },
    { figure: 'AWS CLI: aws configure export-credentials (warm cache)', vault: null, reference: round(med.awsCli, 1), unit: 'ms' },
  ];
  for (const backend of backends) {
    const target = backend === 'keychain';
    for (const [label, key] of [
      [`exec PROFILE -- true, ${backend}, no daemon`, `exec ${backend}`],
      [`exec PROFILE -- true, ${backend}, daemon running`, `exec ${backend} +daemon`],
      [`export --format json, ${backend}, no daemon`, `export ${backend}`],
      [`export --format json, ${backend}, live daemon session`, `export ${backend} +daemon`],
    ]) {
      rows.push(ratioRow(`${label} / floor`, med[key], med.floor, target ? { max: 2.0 } : undefined));
      rows.push(ratioRow(`${label} / AWS CLI`, med[key], med.awsCli, target ? { max: 0.3 } : undefined));
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
