import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonClient } from '@vault/server/client';
import { rssMb } from '../lib/proc.mjs';
import { round } from '../lib/stats.mjs';

/**
 * Figure 5: the daemon's resident set size, idle and with 100 live sessions (80 container, 20
 * IMDS, each with its own listener), every one of them answering requests. A daemon of its own
 * (its own state directory), so nothing else it served counts.
 */
export async function daemonMemory(machine, { backend, sessions = 100, imdsShare = 0.2, requestsPerSession = 20 }) {
  const stateDir = machine.stateDir('.vault-memory');
  const env = { VAULT_STATE_DIR: stateDir };
  await machine.vault(backend, ['server', 'start'], env);
  const pid = JSON.parse(readFileSync(join(stateDir, 'daemon.json'), 'utf8')).pid;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idle = rssMb(pid, readFileSync);

  const client = new DaemonClient({ stateDir, timeoutMs: 30_000 });
  const created = [];
  const imdsCount = Math.round(sessions * imdsShare);
  for (let i = 0; i < sessions; i += 1) {
    created.push(await client.createSession({ profile: 'account-a', kind: i < imdsCount ? 'imds' : 'ecs' }));
  }
  let served = 0;
  await Promise.all(
    created.map(async (s) => {
      for (let k = 0; k < requestsPerSession; k += 1) {
        if (s.kind === 'imds') {
          const base = s.imdsEndpoint.replace(/\/$/, '');
          const token = await (await fetch(`${base}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '300' } })).text();
          const role = await (await fetch(`${base}/latest/meta-data/iam/security-credentials/`, { headers: { 'x-aws-ec2-metadata-token': token } })).text();
          const res = await fetch(`${base}/latest/meta-data/iam/security-credentials/${role}`, { headers: { 'x-aws-ec2-metadata-token': token } });
          if (res.status === 200) served++;
          await res.arrayBuffer();
        } else {
          const res = await fetch(s.uri, { headers: { authorization: s.token } });
          if (res.status === 200) served++;
          await res.arrayBuffer();
        }
      }
    }),
  );
  const loaded = rssMb(pid, readFileSync);
  await machine.vault(backend, ['server', 'stop'], env);
  const expected = sessions * requestsPerSession;
  return {
    rows: [
      { figure: 'daemon RSS, idle', vault: round(idle, 1), unit: 'MB' },
      {
        figure: `daemon RSS, ${sessions} sessions (${imdsCount} IMDS), ${served} requests served`,
        vault: round(loaded, 1),
        unit: 'MB',
        target: { max: 150, unit: 'MB' },
        pass: loaded <= 150 && served === expected,
      },
    ],
    idleMb: idle,
    loadedMb: loaded,
    served,
  };
}
