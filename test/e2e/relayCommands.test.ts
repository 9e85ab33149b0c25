import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.js';
import { World } from '../support/world.js';

/** A GET on a Unix socket. */
function getOnSocket(socketPath: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path, headers: { host: 'relay', ...headers }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function getOnTcp(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * What a user runs to hand a session to containers, with the real CLI and its daemon: the
 * session's relative URI and token from `vault session start --format json`, and the relay
 * socket's path from `vault server status --format json` (docker/README.md).
 */
describe('the commands that hand a session to containers', () => {
  let world: World;
  beforeAll(async () => {
    world = await World.create('file');
    await world.vault(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
  });
  afterAll(async () => {
    if (world) {
      await world.vault(['server', 'stop']);
      await world.close();
    }
  });

  it('vault session start --format json reports the relative URI (/creds/ID) and the token a container needs, beside what it reported before', async () => {
    const started = await world.vault(['session', 'start', 'account-a', '-t', '123456', '--format', 'json']);
    expect(started.code).toBe(0);
    const out = JSON.parse(started.stdout) as { id: string; kind: string; uri: string; relativeUri: string; token: string; env: Record<string, string> };
    expect(out.kind).toBe('ecs');
    expect(out.relativeUri).toBe(`/creds/${out.id}`);
    expect(out.uri).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/creds/${out.id}$`));
    expect(out.env.AWS_CONTAINER_CREDENTIALS_FULL_URI).toBe(out.uri);
    expect(out.env.AWS_CONTAINER_AUTHORIZATION_TOKEN).toBe(out.token);
  });

  it('vault server status --format json names the relay socket (relay.sock, 0600, beside the control socket), which answers as the relay socket and serves the session with its token', async () => {
    const status = await world.vault(['server', 'status', '--format', 'json']);
    expect([status.code, status.stderr]).toEqual([0, '']);
    const s = JSON.parse(status.stdout) as { running: boolean; pid: number; socket: string; relaySocket: string; stateDir: string };
    expect(s.running).toBe(true);
    expect(s.relaySocket).toBe(join(s.stateDir, 'relay.sock'));
    expect(s.socket).toBe(join(s.stateDir, 'control.sock'));
    const stat = statSync(s.relaySocket);
    expect([stat.isSocket(), (stat.mode & 0o777).toString(8)]).toEqual([true, '600']);
    expect(JSON.parse((await getOnSocket(s.relaySocket, '/relay')).body)).toMatchObject({ Service: 'vault-relay' });

    const session = JSON.parse((await world.vault(['session', 'start', 'account-a', '--format', 'json'])).stdout) as { relativeUri: string; token: string };
    const served = await getOnSocket(s.relaySocket, session.relativeUri, { authorization: session.token });
    expect(served.status).toBe(200);
    expect(JSON.parse(served.body)).toMatchObject({ AccessKeyId: expect.any(String), AccountId: '222222222222' });
    expect((await getOnSocket(s.relaySocket, session.relativeUri)).status).toBe(403);
    // Its log says the request came through the relay (audit lines are written in batches, at least once a second).
    const relayed = () =>
      readFileSync(join(s.stateDir, 'daemon.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.audit === 'credentials-served' && l.route === 'ecs-relay');
    for (let i = 0; i < 100 && relayed().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(relayed()).toHaveLength(1);
  });

  it("the relay runs from the CLI bundle alone, as the relay image ships it (no node_modules), and serves the session through the daemon's relay socket", async () => {
    // What relay.Dockerfile's runtime stage copies: packages/cli/bundle and the CLI's package.json.
    const image = mkdtempSync(join(tmpdir(), 'vault-relay-image-'));
    try {
      cpSync(join(REPO, 'packages/cli/bundle'), join(image, 'bundle'), { recursive: true });
      cpSync(join(REPO, 'packages/cli/package.json'), join(image, 'package.json'));
      const s = JSON.parse((await world.vault(['server', 'status', '--format', 'json'])).stdout) as { relaySocket: string };
      const session = JSON.parse((await world.vault(['session', 'start', 'account-a', '--format', 'json'])).stdout) as { relativeUri: string; token: string };
      const port = await freePort();
      const relay = spawn(process.execPath, [join(image, 'bundle/bin.js'), 'relay', '--socket', s.relaySocket, '--listen', `127.0.0.1:${port}`], { cwd: image, env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      await new Promise<void>((resolve, reject) => {
        relay.stderr!.on('data', (c: Buffer) => {
          stderr += c.toString();
          if (stderr.includes('vault relay: listening')) resolve();
        });
        relay.once('exit', (code) => reject(new Error(`relay exited ${code}: ${stderr}`)));
      });
      try {
        const served = await getOnTcp(port, session.relativeUri, { authorization: session.token });
        expect(served.status).toBe(200);
        expect(JSON.parse(served.body)).toMatchObject({ AccountId: '222222222222' });
      } finally {
        relay.kill('SIGTERM');
        await new Promise((resolve) => relay.once('exit', resolve));
      }
      world.capture('relay from the bundle stderr', stderr);
      expect(stderr).toBe(`vault relay: listening on 127.0.0.1:${port}, forwarding /creds/ID to ${s.relaySocket}\nvault relay: stopped (SIGTERM)\n`);
    } finally {
      rmSync(image, { recursive: true, force: true });
    }
  });

  it('vault server status --format json without a daemon: {"running":false}, exit 3', async () => {
    await world.vault(['server', 'stop']);
    const status = await world.vault(['server', 'status', '--format', 'json']);
    expect([status.code, status.stdout, status.stderr]).toEqual([3, '{"running":false}\n', '']);
  });

  it('leaves no secret in output, logs or files but where it is the product (session start prints the token)', () => {
    expect(world.leaks()).toEqual([]);
  });
});
