/**
 * The cold-burst client, a process of its own: N requests to one URL started in the same tick,
 * each on its own connection. Prints {"answered", "ok", "statuses", "maxMs", "p50Ms"}.
 *
 *   node bench/lib/burstClient.mjs URL TOKEN N
 */
import { Agent, request } from 'node:http';

const [url, token, n] = [process.argv[2], process.argv[3], Number(process.argv[4])];
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
const started = process.hrtime.bigint();
const one = () =>
  new Promise((resolve) => {
    const req = request(url, { headers: { authorization: token }, agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6, key: res.statusCode === 200 ? JSON.parse(body).AccessKeyId : undefined }));
    });
    req.on('error', (error) => resolve({ status: 0, ms: Number(process.hrtime.bigint() - started) / 1e6, error: error.code }));
    req.end();
  });
const answers = await Promise.all(Array.from({ length: n }, one));
const ms = answers.map((a) => a.ms).sort((a, b) => a - b);
const statuses = {};
for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
console.log(
  JSON.stringify({
    answered: answers.length,
    ok: answers.filter((a) => a.status === 200).length,
    distinctKeys: new Set(answers.filter((a) => a.key).map((a) => a.key)).size,
    statuses,
    maxMs: ms[ms.length - 1],
    p50Ms: ms[Math.floor(ms.length / 2)],
  }),
);
