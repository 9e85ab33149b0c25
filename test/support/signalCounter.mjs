// A child for `vault exec` that counts the signals it gets. It writes FILE.ready (its pid) once its
// handlers are in place; a second after the last signal it writes the counts to FILE as JSON and
// exits 0. A duplicate forwarded by vault arrives within milliseconds of the first, well inside
// that window.
import { writeFileSync } from 'node:fs';

const file = process.argv[2];
const counts = {};
let timer;
const finish = () => {
  writeFileSync(file, JSON.stringify(counts));
  process.exit(0);
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) {
  process.on(signal, () => {
    counts[signal] = (counts[signal] ?? 0) + 1;
    clearTimeout(timer);
    timer = setTimeout(finish, 1000);
  });
}
writeFileSync(`${file}.ready`, String(process.pid));
setTimeout(finish, 60_000);
