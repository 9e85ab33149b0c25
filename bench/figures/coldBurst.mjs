import { fileURLToPath } from 'node:url';
import { runOk } from '../lib/proc.mjs';
import { median, round } from '../lib/stats.mjs';

const CLIENT = fileURLToPath(new URL('../lib/burstClient.mjs', import.meta.url));

/**
 * Figure 2: N clients asking a fresh session at the same moment. Each round starts a lazy session
 * for a role nobody has assumed yet (burst-R, over the MFA session cached in the keyring), so the
 * first request must call STS; the burst client (its own process) fires every request in one tick.
 * STS calls are counted at the stand-in.
 */
export async function coldBurst(machine, { rounds, clients, backend }) {
  const results = [];
  for (let r = 0; r < rounds; r += 1) {
    const session = await machine.startSession(backend, ['--lazy'], `burst-${r}`);
    const before = machine.mintingCalls();
    const { stdout } = await runOk(process.execPath, [CLIENT, session.env.AWS_CONTAINER_CREDENTIALS_FULL_URI, session.token, String(clients)]);
    const burst = JSON.parse(stdout);
    results.push({ ...burst, stsCalls: machine.mintingCalls() - before });
    await machine.vault(backend, ['session', 'stop', session.id]);
  }
  const allAnswered = results.every((x) => x.ok === clients);
  const maxStsCalls = Math.max(...results.map((x) => x.stsCalls));
  return {
    rows: [
      { figure: `cold burst: ${clients} clients at once, STS calls (worst of ${rounds} rounds)`, vault: maxStsCalls, unit: 'calls', target: { equals: 1 }, pass: results.every((x) => x.stsCalls === 1) },
      { figure: `cold burst: clients answered 200 (every round)`, vault: Math.min(...results.map((x) => x.ok)), unit: `of ${clients}`, target: { equals: clients }, pass: allAnswered },
      { figure: 'cold burst: max latency (median of rounds)', vault: round(median(results.map((x) => x.maxMs)), 1), unit: 'ms' },
    ],
    rounds: results,
  };
}
