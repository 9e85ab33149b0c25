import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { World } from '../support/world.js';

/**
 * Another local user, for real: a live daemon started by the built CLI (as root, as CI runs it)
 * with an IMDS session and a container session over the STS stand-in, and a client process run
 * as `nobody` (setpriv) that tries everything a local user could: the IMDSv2 handshake, the
 * container route with and without the session's token, the control socket, the relay socket, and the state
 * directory's files. It must get no credential, no IMDS token, no session list and no file. The
 * same client run as the daemon's own user is the positive control: served everything, so the
 * refusals are about the uid and nothing else.
 */

const OTHER_USER = ['--reuid=nobody', '--regid=nogroup', '--clear-groups'];

/**
 * The client. Reads its targets as JSON on stdin (the container token is a secret: never a process
 * argument) and prints one JSON array of attempts. It prints no body, only what the body was: a
 * credential, an IMDS token, a session list, or the error code.
 */
const CLIENT = String.raw`
import { request } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
const spec = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
function http(name, options) {
  return new Promise((resolve) => {
    const req = request({ agent: false, timeout: 5000, ...options }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ error: error.code ?? error.message }));
    req.end();
  });
}
function record(name, kind, reply) {
  const body = reply.body ?? '';
  let code;
  try { code = JSON.parse(body).Code; } catch {}
  const entry = { name, kind, status: reply.status, error: reply.error, code, bytes: body.length,
    credential: /SecretAccessKey|AccessKeyId/.test(body),
    sessionList: kind === 'control' && reply.status === 200 };
  results.push(entry);
  return body;
}
const imds = (name, method, path, headers = {}) =>
  http(name, { host: '127.0.0.1', port: spec.imdsPort, method, path, headers: { host: '127.0.0.1:' + spec.imdsPort, ...headers } });
const ecs = (name, headers) =>
  http(name, { host: '127.0.0.1', port: spec.ecsPort, method: 'GET', path: spec.ecsPath, headers: { host: '127.0.0.1:' + spec.ecsPort, ...headers } });

// IMDSv2 as an SDK does it: token, role list, credentials.
const tokenReply = await imds('imds token PUT', 'PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' });
const token = record('imds token PUT', 'imds-token', tokenReply);
const withToken = { 'x-aws-ec2-metadata-token': tokenReply.status === 200 ? token : 'x.forged' };
const roleReply = await imds('imds role list', 'GET', '/latest/meta-data/iam/security-credentials/', withToken);
const role = record('imds role list', 'imds-role', roleReply);
const roleName = roleReply.status === 200 ? role : spec.roleName;
record('imds credentials', 'imds', await imds('imds credentials', 'GET', '/latest/meta-data/iam/security-credentials/' + roleName, withToken));
record('imds credentials without a token (IMDSv1)', 'imds', await imds('v1', 'GET', '/latest/meta-data/iam/security-credentials/' + roleName));
// The container route: the right token, none, a wrong one.
record('container route, right token', 'ecs', await ecs('ecs', { authorization: spec.ecsToken }));
record('container route, no token', 'ecs', await ecs('ecs', {}));
record('container route, wrong token', 'ecs', await ecs('ecs', { authorization: 'A'.repeat(spec.ecsToken.length) }));
// The control API on its Unix socket.
for (const path of ['/status', '/sessions']) {
  record('control socket GET ' + path, 'control', await http(path, { socketPath: spec.controlSocket, method: 'GET', path, headers: { host: 'localhost' } }));
}
// The relay socket (what a relay container is handed), with the session's token.
record('relay socket, right token', 'relay', await http('relay', { socketPath: spec.relaySocket, method: 'GET', path: spec.ecsPath, headers: { host: 'relay', authorization: spec.ecsToken } }));
// The state directory and what is in it.
try {
  const names = readdirSync(spec.stateDir);
  results.push({ name: 'list the state directory', kind: 'file', status: 200, bytes: names.length, fileRead: true });
} catch (error) {
  results.push({ name: 'list the state directory', kind: 'file', error: error.code, fileRead: false });
}
for (const file of spec.files) {
  try {
    const text = readFileSync(file, 'utf8');
    results.push({ name: 'read ' + file, kind: 'file', status: 200, bytes: text.length, fileRead: true });
  } catch (error) {
    results.push({ name: 'read ' + file, kind: 'file', error: error.code, fileRead: false });
  }
}
process.stdout.write(JSON.stringify({ uid: process.getuid(), results }));
`;

interface Attempt {
  name: string;
  kind: 'imds-token' | 'imds-role' | 'imds' | 'ecs' | 'control' | 'relay' | 'file';
  status?: number;
  error?: string;
  code?: string;
  bytes: number;
  credential?: boolean;
  sessionList?: boolean;
  fileRead?: boolean;
}

interface Tally {
  tried: number;
  /** Attempts that got anything but a refusal: a 2xx reply, or a file read. */
  answered: number;
  credentials: number;
  imdsTokens: number;
  roleLists: number;
  sessionLists: number;
  filesRead: number;
}

function tally(results: Attempt[]): Tally {
  const ok = (a: Attempt) => a.status !== undefined && a.status >= 200 && a.status < 300;
  return {
    tried: results.length,
    answered: results.filter(ok).length,
    credentials: results.filter((a) => a.credential === true).length,
    imdsTokens: results.filter((a) => a.kind === 'imds-token' && ok(a) && a.bytes > 0).length,
    roleLists: results.filter((a) => a.kind === 'imds-role' && ok(a)).length,
    sessionLists: results.filter((a) => a.sessionList === true).length,
    filesRead: results.filter((a) => a.fileRead === true).length,
  };
}

function tallyText(t: Tally): string {
  return `tried=${t.tried} answered=${t.answered} credentials=${t.credentials} imdsTokens=${t.imdsTokens} roleLists=${t.roleLists} sessionLists=${t.sessionLists} filesRead=${t.filesRead}`;
}

describe('another local user (a real second uid) against a live daemon', () => {
  let world: World;
  let clientDir: string;
  let clientScript: string;
  let spec: Record<string, unknown>;

  /** The client as `nobody` (other user) or as this process's own uid (the daemon's). */
  function runClient(asOtherUser: boolean): { uid: number; results: Attempt[] } {
    const argv = asOtherUser ? ['setpriv', [...OTHER_USER, '--', process.execPath, clientScript]] : [process.execPath, [clientScript]];
    const ran = spawnSync(argv[0] as string, argv[1] as string[], { cwd: clientDir, env: { PATH: process.env.PATH }, input: JSON.stringify(spec), encoding: 'utf8', timeout: 30_000 });
    expect(ran.status, `client exited ${ran.status} ${ran.signal}: ${ran.stderr}`).toBe(0);
    world.capture(`client (${asOtherUser ? 'nobody' : 'daemon uid'}) stderr`, ran.stderr);
    const parsed = JSON.parse(ran.stdout) as { uid: number; results: Attempt[] };
    // The other user's whole output goes to the leak scan; the control's is credentials by design.
    if (asOtherUser) world.capture('client (nobody) stdout', ran.stdout);
    return parsed;
  }

  beforeAll(async () => {
    expect(process.getuid?.(), 'test/hardening/otherUser.test.ts needs root: it runs its client as another user (setpriv --reuid=nobody); run it as root, as CI does').toBe(0);
    // The client runs as nobody: node, and the script, must be reachable by that uid.
    clientDir = mkdtempSync(join(tmpdir(), 'vault-otheruser-'));
    chmodSync(clientDir, 0o755);
    clientScript = join(clientDir, 'client.mjs');
    writeFileSync(clientScript, CLIENT, { mode: 0o644 });
    const probe = spawnSync('setpriv', [...OTHER_USER, '--', process.execPath, '-e', 'process.stdout.write(String(process.getuid()))'], { cwd: clientDir, encoding: 'utf8' });
    expect(
      probe.stdout,
      `nobody cannot run ${process.execPath} (setpriv exit ${probe.status}, ${probe.error?.message ?? probe.stderr.trim()}): install node where every user can run it, and util-linux's setpriv`,
    ).toBe('65534');

    world = await World.create('file');
    // A home that other users may traverse, as many are: what keeps them out must be vault's own
    // 0700 directories and 0600 files, not the test's temporary home.
    chmodSync(world.home, 0o755);
    const added = await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
    expect(added.code, added.stderr).toBe(0);
    const imds = await world.vault(['session', 'start', '--imds', '--format', 'json', '-t', '123456', 'account-a']);
    expect(imds.code, imds.stderr).toBe(0);
    const ecs = await world.vault(['session', 'start', '--format', 'json', 'account-a']);
    expect(ecs.code, ecs.stderr).toBe(0);
    const imdsSession = JSON.parse(imds.stdout) as { imdsEndpoint: string; profile: string };
    const ecsSession = JSON.parse(ecs.stdout) as { uri: string; token: string };
    const status = await world.vault(['server', 'status']);
    expect(status.code, status.stderr).toBe(0);
    const logFile = /^log: (.+)$/m.exec(status.stdout)?.[1];
    expect(logFile, status.stdout).toBeDefined();
    const stateDir = dirname(logFile!);
    const state = JSON.parse(readFileSync(join(stateDir, 'daemon.json'), 'utf8')) as { socket: string };
    const ecsUrl = new URL(ecsSession.uri);
    spec = {
      imdsPort: Number(new URL(imdsSession.imdsEndpoint).port),
      roleName: imdsSession.profile,
      ecsPort: Number(ecsUrl.port),
      ecsPath: ecsUrl.pathname,
      ecsToken: ecsSession.token,
      controlSocket: state.socket,
      relaySocket: join(stateDir, 'relay.sock'),
      stateDir,
      files: [
        ...readdirSync(stateDir)
          .filter((name) => name !== 'control.sock' && name !== 'relay.sock')
          .map((name) => join(stateDir, name)),
        ...readdirSync(join(world.home, '.awsvault', 'keys')).map((name) => join(world.home, '.awsvault', 'keys', name)),
      ],
    };
  });

  afterAll(async () => {
    if (clientDir) rmSync(clientDir, { recursive: true, force: true });
    if (!world) return;
    await world.vault(['server', 'stop']);
    await world.close();
  });

  it('as nobody: no credential, no IMDS token, no role or session list, no file of the daemon', () => {
    const other = runClient(true);
    expect(other.uid).toBe(65534);
    const t = tally(other.results);
    console.log(`FIGURE otherUser uid=${other.uid} ${tallyText(t)}`);
    const served = other.results.filter((a) => (a.status !== undefined && a.status < 300) || a.fileRead || a.credential);
    expect(served, JSON.stringify(served)).toEqual([]);
    expect(t).toMatchObject({ credentials: 0, imdsTokens: 0, roleLists: 0, sessionLists: 0, filesRead: 0 });
    // Refused with a reason, not by a broken daemon: JSON 403 from every HTTP listener.
    for (const a of other.results.filter((r) => r.kind !== 'control' && r.kind !== 'relay' && r.kind !== 'file')) {
      expect(a.status, a.name).toBe(403);
      expect(a.code, a.name).toBe('USER_NOT_ALLOWED');
    }
    for (const a of other.results.filter((r) => r.kind === 'control' || r.kind === 'relay' || r.kind === 'file')) expect(a.error, a.name).toBe('EACCES');
    expect(world.leaks()).toEqual([]);
  });

  it("as the daemon's own user, the same client is served: IMDS token, role, credentials, the container route, the control API, the relay socket, the files", () => {
    const own = runClient(false);
    expect(own.uid).toBe(process.getuid?.());
    const t = tally(own.results);
    console.log(`FIGURE otherUser sameUid uid=${own.uid} ${tallyText(t)}`);
    const byName = new Map(own.results.map((a) => [a.name, a]));
    expect(byName.get('imds token PUT')?.status).toBe(200);
    expect(byName.get('imds role list')?.status).toBe(200);
    expect(byName.get('imds credentials')).toMatchObject({ status: 200, credential: true });
    expect(byName.get('imds credentials without a token (IMDSv1)')?.status).toBe(401);
    expect(byName.get('container route, right token')).toMatchObject({ status: 200, credential: true });
    expect(byName.get('container route, no token')).toMatchObject({ status: 403, code: 'ACCESS_DENIED' });
    expect(byName.get('container route, wrong token')).toMatchObject({ status: 403, code: 'ACCESS_DENIED' });
    expect(byName.get('control socket GET /status')?.status).toBe(200);
    expect(byName.get('control socket GET /sessions')?.status).toBe(200);
    expect(byName.get('relay socket, right token')).toMatchObject({ status: 200, credential: true });
    expect(t).toMatchObject({ credentials: 3, imdsTokens: 1, roleLists: 1, sessionLists: 2, filesRead: (spec.files as string[]).length + 1 });
  });
});
