import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, run, type RunResult } from '../support/cli.js';
import { World } from '../support/world.js';

/**
 * The package a user installs: `npm pack` packages/cli, install the tarball with `npm install -g`
 * into a fresh prefix with a fresh HOME, and run that `vault` (found on PATH, as a user's is)
 * against the STS stand-in. npm's download cache is the machine's (npm_config_cache), so the
 * runtime dependencies come from it when they are there; nothing of the repo's node_modules is used.
 */
const CLI = join(REPO, 'packages/cli');
const NPM_CACHE = process.env.npm_config_cache ?? join(homedir(), '.npm');

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  files: Array<{ path: string; size: number }>;
}

let tmp: string;
let prefix: string;
let packed: Packed;
let tarball: string;
let world: World;

/** npm, asynchronously (a synchronous child would stall vitest's worker for the whole install). */
async function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  const result = await run('npm', args, { cwd, env, timeoutMs: 400_000 });
  if (result.code !== 0) throw new Error(`npm ${args.join(' ')} exited ${result.code ?? result.signal}: ${result.stderr}`);
  return result.stdout;
}

/** The installed vault, by name on PATH, with the World's HOME and STS stand-in. */
async function installed(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const result = await run('vault', args, { env: world.env({ PATH: `${join(prefix, 'bin')}:${dirname(process.execPath)}:/usr/bin:/bin`, ...extra }) });
  if (args[0] !== 'export') world.capture(`installed vault ${args.join(' ')} stdout`, result.stdout);
  world.capture(`installed vault ${args.join(' ')} stderr`, result.stderr);
  return result;
}

describe('the npm package: packed, installed into a fresh prefix, run end to end', () => {
  beforeAll(async () => {
    expect(existsSync(join(CLI, 'bundle/bin.js')), 'run `npm run build` first').toBe(true);
    tmp = mkdtempSync(join(tmpdir(), 'vault-package-'));
    prefix = join(tmp, 'prefix');
    const home = join(tmp, 'home');
    mkdirSync(home, { mode: 0o700 });
    const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH}`, HOME: home, npm_config_cache: NPM_CACHE };
    [packed] = JSON.parse(await npm(['pack', '--json', '--pack-destination', tmp], CLI, env)) as Packed[];
    tarball = join(tmp, packed!.filename);
    await npm(['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], tmp, env);
    world = await World.create('file');
  }, 420_000);

  afterAll(async () => {
    await world?.vault(['server', 'stop']);
    await world?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the tarball holds the launcher, the bundle, package.json and README only: no tests, stand-ins or source maps', () => {
    const paths = packed.files.map((f) => f.path).sort();
    for (const path of paths) expect(path).toMatch(/^(package\.json|README\.md|bin\/vault\.js|bundle\/[\w-]+\.js)$/);
    expect(paths).toContain('bin/vault.js');
    expect(paths).toContain('bundle/bin.js');
    const bundle = readdirSync(join(prefix, 'lib/node_modules/aws-vault-node/bundle')).map((f) => readFileSync(join(prefix, 'lib/node_modules/aws-vault-node/bundle', f), 'utf8')).join('\n');
    expect(bundle).not.toMatch(/StsStandIn|stand-ins|from 'vitest'|sourceMappingURL/);
    // The figure the README quotes; printed for the report.
    console.log(`package: ${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${paths.length} files`);
    expect(packed.size).toBeLessThan(300_000);
  });

  it('installs runtime dependencies only: no workspace package, no dev tool', () => {
    const modules = join(prefix, 'lib/node_modules/aws-vault-node/node_modules');
    const top = readdirSync(modules);
    expect(top).not.toContain('@vault');
    for (const dev of ['commander', 'esbuild', 'typescript', 'vitest']) expect(top).not.toContain(dev);
    for (const runtime of ['@aws-sdk', 'fastify', 'jose', 'pino']) expect(top).toContain(runtime);
    // Every package the bundle imports is one the package declares.
    const manifest = JSON.parse(readFileSync(join(CLI, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; optionalDependencies: Record<string, string> };
    const declared = new Set([...Object.keys(manifest.dependencies), ...Object.keys(manifest.optionalDependencies)]);
    const bundleDir = join(CLI, 'bundle');
    const imported = new Set<string>();
    for (const file of readdirSync(bundleDir)) {
      for (const [, specifier] of readFileSync(join(bundleDir, file), 'utf8').matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)["']([@\w][\w@./:-]*)["']/g)) {
        if (specifier!.startsWith('.') || specifier!.startsWith('node:')) continue;
        imported.add(specifier!.split('/').slice(0, specifier!.startsWith('@') ? 2 : 1).join('/'));
      }
    }
    expect([...imported].filter((name) => !declared.has(name)).sort()).toEqual([]);
  });

  it('the installed vault on PATH: add, exec, export, session start and stop against the STS stand-in', async () => {
    const version = await installed(['--version']);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(CLI, 'package.json'), 'utf8')).version);

    const added = await installed(['add', '--env', 'central-account'], { AWS_ACCESS_KEY_ID: world.user.accessKeyId, AWS_SECRET_ACCESS_KEY: world.user.secretAccessKey });
    expect(added.code, added.stderr).toBe(0);

    const exec = await installed(['exec', 'account-a', '-t', '123456', '--', process.execPath, '-e', 'console.log(process.env.AWS_ACCESS_KEY_ID.slice(0, 4), process.env.AWS_VAULT)']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout).toBe('ASIA account-a\n');

    const exported = await installed(['export', 'account-a', '--format', 'json']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ Version: 1, AccessKeyId: expect.stringMatching(/^ASIA/) });

    const started = await installed(['session', 'start', '--format', 'json', 'account-a']);
    expect(started.code, started.stderr).toBe(0);
    const session = JSON.parse(started.stdout) as { id: string; uri: string; token: string };
    const served = await fetch(session.uri, { headers: { Authorization: session.token } });
    expect(served.status).toBe(200);
    expect(((await served.json()) as { AccessKeyId: string }).AccessKeyId).toMatch(/^ASIA/);

    const stopped = await installed(['session', 'stop', session.id]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect((await fetch(session.uri, { headers: { Authorization: session.token } })).status).not.toBe(200);
    expect((await installed(['server', 'stop'])).code).toBe(0);
  }, 120_000);

  it('no secret reached an output, a file under HOME or an argument', () => {
    expect(world.leaks()).toEqual([]);
  });
});
