/**
 * Runs the STS stand-in as its own process (README demo, benchmarks):
 *
 *   node packages/stand-ins/dist/stsStandInMain.js [--port N] [--fixture FILE] [--check-request-time]
 *
 * Without --fixture it loads `demoFixture` (the central user, MFA device and two roles of the README's Configuration example).
 * Prints one JSON line, {"url":"http://127.0.0.1:PORT"}, once listening (plus "users" with the
 * generated keys when a fixture user has none), and exits on SIGTERM/SIGINT. Other processes read
 * calls at GET /__standin/calls, reset with POST /__standin/reset, queue faults with POST /__standin/faults.
 */
import { readFileSync } from 'node:fs';
import { demoFixture, loadFixture, startStsStandIn, type StsFixture } from './stsStandIn.js';

interface Args {
  port: number;
  fixture?: string;
  checkRequestTime: boolean;
}

function usage(message: string): never {
  process.stderr.write(`stsStandInMain: ${message}\nusage: stsStandInMain.js [--port N] [--fixture FILE] [--check-request-time]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { port: 0, checkRequestTime: false };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${name} needs a value`);
    switch (name) {
      case '--port': {
        const port = Number(value());
        if (!Number.isInteger(port) || port < 0 || port > 65535) usage('--port must be 0–65535');
        args.port = port;
        break;
      }
      case '--fixture':
        args.fixture = value();
        break;
      case '--check-request-time':
        args.checkRequestTime = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write('usage: stsStandInMain.js [--port N] [--fixture FILE] [--check-request-time]\n');
        process.exit(0);
      default:
        usage(`unknown argument ${arg}`);
    }
  }
  return args;
}

function readFixture(file: string): StsFixture {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    usage(`cannot read fixture ${file}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) usage(`fixture ${file} must be a JSON object with users, mfaDevices, roles`);
  for (const list of ['users', 'mfaDevices', 'roles'] as const) {
    const value = (parsed as Record<string, unknown>)[list];
    if (value !== undefined && !Array.isArray(value)) usage(`fixture ${file}: "${list}" must be an array`);
  }
  return parsed as StsFixture;
}

const args = parseArgs(process.argv.slice(2));
const fixture = args.fixture ? readFixture(args.fixture) : demoFixture;
const standIn = await startStsStandIn({ port: args.port, checkRequestTime: args.checkRequestTime });
let keys: ReturnType<typeof loadFixture>;
try {
  keys = loadFixture(standIn, fixture);
} catch (error) {
  await standIn.close();
  usage(`bad fixture: ${(error as Error).message}`);
}
const generated = keys.filter((_, i) => !fixture.users?.[i]?.accessKeyId || !fixture.users[i]?.secretAccessKey);
process.stdout.write(`${JSON.stringify(generated.length > 0 ? { url: standIn.url, users: generated } : { url: standIn.url })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  standIn.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
