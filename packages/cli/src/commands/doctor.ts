import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  ConfigLoader,
  DEFAULT_STS_REGION,
  VaultError,
  configFilePath,
  defaultFileDir,
  isVaultError,
  loadKeytar,
  openKeyring,
  readConfigFile,
  resolveBackendName,
  resolveStsTarget,
  type StsTarget,
} from '@vault/core';
import type { Context } from '../context.js';
import { execveAvailable } from '../replaceProcess.js';

/**
 * `vault doctor`: one line per check, `ok`/`warn`/`fail` with what to do, for a user asking why
 * vault does not work on their machine. Nothing it prints is a secret: names, paths, counts,
 * URLs, ARNs and versions only (a key, token or passphrase never reaches a check's text). It never
 * prompts: the file keyring is listed without its passphrase, and the daemon is asked, not started.
 */
export type Status = 'ok' | 'warn' | 'fail';

export interface Check {
  check: string;
  status: Status;
  detail: string;
  remedy?: string;
}

export interface DoctorInput {
  profile?: string;
  format?: string;
}

/** SigV4 refuses a request signed more than 5 minutes from the service's clock (AWS Signature Version 4 docs, "RequestTimeTooSkewed"). */
const SIGV4_SKEW_MS = 5 * 60_000;
/** Warn well before: a minute of drift is already a broken NTP. */
const SKEW_WARN_MS = 60_000;
const ENDPOINT_TIMEOUT_MS = 5_000;

export async function doctor(input: DoctorInput, ctx: Context): Promise<number> {
  if (input.format !== undefined && input.format !== 'text' && input.format !== 'json') {
    throw new VaultError('USAGE', `unknown format "${input.format}" for doctor`, { hint: 'use --format text or --format json' });
  }
  const checks: Check[] = [];
  checks.push(nodeCheck());
  checks.push(await keytarCheck());
  const config = await configCheck(ctx);
  checks.push(...config.checks);
  checks.push(await keyringCheck(ctx));
  checks.push(await daemonCheck(ctx));
  const sts = await stsChecks(ctx, config.loader);
  checks.push(...sts.checks);
  checks.push(clockCheck(sts.offsets));
  if (input.profile !== undefined) checks.push(await identityCheck(ctx, input.profile));

  if (input.format === 'json') {
    ctx.stdout.write(`${JSON.stringify({ ok: !checks.some((c) => c.status === 'fail'), node: process.version, platform: `${process.platform}-${process.arch}`, checks }, null, 2)}\n`);
  } else {
    const width = Math.max(...checks.map((c) => c.check.length));
    for (const c of checks) ctx.stdout.write(`${c.status.padEnd(4)}  ${c.check.padEnd(width)}  ${c.detail}${c.remedy ? `; ${c.remedy}` : ''}\n`);
  }
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}

function nodeCheck(): Check {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const replaces = execveAvailable() ? 'vault exec replaces itself with the command' : 'vault exec runs the command as a child';
  if (major < 20 || (major === 20 && minor < 19)) {
    return { check: 'node', status: 'fail', detail: `Node ${process.version} is older than vault supports (20.19)`, remedy: 'install Node 24 (the current LTS)' };
  }
  if (major < 22) {
    // Node 20 reached end of life in April 2026; the AWS SDK for JavaScript needs 22+ from January 2027.
    return { check: 'node', status: 'warn', detail: `Node ${process.version} is past its end of life (${replaces})`, remedy: 'install Node 24 (the current LTS); the AWS SDK drops Node 20 in January 2027' };
  }
  return { check: 'node', status: 'ok', detail: `Node ${process.version} (${replaces})` };
}

async function keytarCheck(): Promise<Check> {
  try {
    await loadKeytar();
    return { check: 'keytar', status: 'ok', detail: 'loaded (the keychain backend can work)' };
  } catch (error) {
    return {
      check: 'keytar',
      status: 'warn',
      detail: `not loaded: ${firstLine(error)}`,
      remedy: 'the file backend works without it; for the keychain install libsecret (Linux: libsecret-1-dev) and reinstall vault so npm builds keytar, or run `npm rebuild keytar` in a clone',
    };
  }
}

async function configCheck(ctx: Context): Promise<{ checks: Check[]; loader: ConfigLoader | undefined }> {
  const path = configFilePath(ctx.env, ctx.homeDir);
  let loader: ConfigLoader;
  try {
    const file = await readConfigFile(path);
    if (file.profiles.size === 0) {
      const { existsSync } = await import('node:fs');
      const missing = !existsSync(path);
      return {
        checks: [
          {
            check: 'config',
            status: 'warn',
            detail: missing ? `no config file at ${path}` : `${path} declares no profiles`,
            remedy: 'add [profile NAME] sections (see the README), or point AWS_CONFIG_FILE at your config file',
          },
        ],
        loader: undefined,
      };
    }
    loader = new ConfigLoader(file, { env: ctx.env });
  } catch (error) {
    return { checks: [{ check: 'config', status: 'fail', ...asDetail(error, 'fix the file, or point AWS_CONFIG_FILE at another') }], loader: undefined };
  }
  const names = loader.profileNames();
  const checks: Check[] = [{ check: 'config', status: 'ok', detail: `${path}: ${names.length} profile(s): ${names.join(', ')}` }];
  // The first profile that does not resolve (bad role_arn, a source_profile loop, a missing source).
  for (const name of names) {
    try {
      loader.load(name);
    } catch (error) {
      checks.push({ check: 'profiles', status: 'fail', ...asDetail(error, `fix [profile ${name}] in ${path}`, `profile ${name}: `) });
      return { checks, loader };
    }
  }
  checks.push({ check: 'profiles', status: 'ok', detail: `all ${names.length} resolve` });
  return { checks, loader };
}

async function keyringCheck(ctx: Context): Promise<Check> {
  let backend: string;
  try {
    backend = await resolveBackendName({ backend: ctx.options.backend, env: ctx.env });
  } catch (error) {
    return { check: 'keyring', status: 'fail', ...asDetail(error, 'choose a backend with --backend or AWS_VAULT_BACKEND') };
  }
  const where = backend === 'file' ? `file backend (${defaultFileDir(ctx.env, ctx.homeDir)})` : 'keychain backend';
  try {
    // Never the passphrase: listing the file keyring reads file names only.
    const keyring = await openKeyring({
      backend,
      env: ctx.env,
      homeDir: ctx.homeDir,
      passphrase: () => Promise.reject(new VaultError('INTERNAL', 'doctor does not ask for the passphrase')),
    });
    const items = await keyring.keys();
    return { check: 'keyring', status: 'ok', detail: `${where} opens; ${items.length} item(s)` };
  } catch (error) {
    return { check: 'keyring', status: 'fail', ...asDetail(error, 'or use `--backend file` (AWS_VAULT_BACKEND=file)', `${where}: `) };
  }
}

async function daemonCheck(ctx: Context): Promise<Check> {
  try {
    const [{ DaemonClient, readPidFile, isProcessAlive, daemonPaths }, { stateDir }] = await Promise.all([import('@vault/server/client'), import('../daemonLink.js')]);
    const dir = stateDir(ctx);
    const client = new DaemonClient({ stateDir: dir, timeoutMs: 2_000 });
    if (await client.isRunning()) {
      const status = await client.status();
      return { check: 'daemon', status: 'ok', detail: `runs (pid ${status.pid}) and answers on ${client.socketPath}; ${status.sessions} session(s)` };
    }
    const pid = readPidFile(daemonPaths(dir).pidFile);
    if (pid !== undefined && isProcessAlive(pid)) {
      return { check: 'daemon', status: 'fail', detail: `pid ${pid} runs but does not answer on ${client.socketPath}`, remedy: `see its log at ${client.logFile}; \`vault server stop\` ends it` };
    }
    if (pid !== undefined) {
      return { check: 'daemon', status: 'warn', detail: `ended without stopping (pid ${pid} is gone)`, remedy: 'the next command that needs it starts a new one, which restores its sessions; or run `vault server start`' };
    }
    return { check: 'daemon', status: 'ok', detail: 'not running (it starts when a command needs it: vault server start, vault session start)' };
  } catch (error) {
    return { check: 'daemon', status: 'fail', ...asDetail(error, 'see `vault server status`') };
  }
}

/** The URL a target's STS calls go to: the one the user named, else the regional endpoint's standard name (commercial and China partitions). */
export function stsUrl(target: StsTarget): string {
  if (target.endpoint) return target.endpoint;
  if (target.useGlobalEndpoint) return 'https://sts.amazonaws.com';
  const suffix = target.region.startsWith('cn-') ? 'amazonaws.com.cn' : target.useDualstackEndpoint ? 'api.aws' : 'amazonaws.com';
  return `https://sts${target.useFipsEndpoint ? '-fips' : ''}.${target.region}.${suffix}`;
}

interface Probe {
  status: number;
  date: string | undefined;
  ms: number;
  sentAt: number;
}

async function stsChecks(ctx: Context, loader: ConfigLoader | undefined): Promise<{ checks: Check[]; offsets: number[] }> {
  const urls = new Map<string, string[]>();
  const profiles = loader?.profileNames() ?? [];
  for (const name of profiles) {
    let url: string;
    try {
      url = stsUrl(resolveStsTarget(loader!.load(name), ctx.env));
    } catch {
      continue; // reported by the profiles check
    }
    urls.set(url, [...(urls.get(url) ?? []), name]);
  }
  if (urls.size === 0) urls.set(stsUrl(resolveStsTarget({ region: ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION ?? DEFAULT_STS_REGION }, ctx.env)), []);
  const checks: Check[] = [];
  const offsets: number[] = [];
  await Promise.all(
    [...urls].map(async ([url, names]) => {
      const usedBy = names.length > 0 ? ` (${names.join(', ')})` : '';
      try {
        const probe = await probeEndpoint(url, ctx);
        if (probe.date !== undefined) {
          const served = Date.parse(probe.date);
          // The Date header has one-second resolution; the middle of the round trip is our best guess of when it was written.
          if (!Number.isNaN(served)) offsets.push(served - (probe.sentAt + probe.ms / 2));
        }
        checks.push({ check: 'sts', status: 'ok', detail: `${url} answers (HTTP ${probe.status}, ${probe.ms} ms)${usedBy}` });
      } catch (error) {
        checks.push({
          check: 'sts',
          status: 'fail',
          detail: `${url} does not answer: ${firstLine(error)}${usedBy}`,
          remedy: 'check the network, a proxy (HTTPS_PROXY), the region, or endpoint_url / AWS_ENDPOINT_URL_STS',
        });
      }
    }),
  );
  checks.sort((a, b) => a.detail.localeCompare(b.detail));
  return { checks, offsets };
}

/** An unsigned GET: STS answers it with an error and a Date header, which is all this needs. */
function probeEndpoint(url: string, ctx: Context): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const sentAt = ctx.clock.now();
    const started = performance.now();
    const request = (url.startsWith('http:') ? httpRequest : httpsRequest)(url, { method: 'GET', timeout: ENDPOINT_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, date: res.headers.date, ms: Math.round(performance.now() - started), sentAt }));
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${ENDPOINT_TIMEOUT_MS / 1000} s`)));
    request.on('error', (error: NodeJS.ErrnoException) => reject(error.code ? new Error(error.code) : error));
    request.end();
  });
}

function clockCheck(offsets: number[]): Check {
  if (offsets.length === 0) return { check: 'clock', status: 'warn', detail: 'offset unknown: no STS endpoint answered with a Date header', remedy: 'fix the sts check first' };
  const offset = offsets.reduce((worst, o) => (Math.abs(o) > Math.abs(worst) ? o : worst));
  const seconds = Math.round(offset / 1000);
  const detail = `${Math.abs(seconds)} s ${seconds >= 0 ? 'behind' : 'ahead of'} STS (its Date header)`;
  const remedy = 'synchronise the clock (e.g. timedatectl set-ntp true); SigV4 refuses requests signed more than 5 minutes off';
  if (Math.abs(offset) > SIGV4_SKEW_MS) return { check: 'clock', status: 'fail', detail, remedy };
  if (Math.abs(offset) > SKEW_WARN_MS) return { check: 'clock', status: 'warn', detail, remedy };
  return { check: 'clock', status: 'ok', detail };
}

/** GetCallerIdentity with the profile's credentials (may ask for an MFA code, as exec would). */
async function identityCheck(ctx: Context, profile: string): Promise<Check> {
  try {
    const chain = await ctx.chain(profile, {});
    const credentials = await chain.credentials();
    const config = await ctx.config();
    const identity = await ctx.sts().getCallerIdentity(credentials, resolveStsTarget(config.load(profile), ctx.env));
    return { check: 'identity', status: 'ok', detail: `${profile} is ${identity.arn} (account ${identity.account})` };
  } catch (error) {
    return { check: 'identity', status: 'fail', ...asDetail(error, `see \`vault exec ${profile} --debug -- true\``, `${profile}: `) };
  }
}

/** A VaultError's message and hint as detail and remedy; anything else by its first line. */
function asDetail(error: unknown, fallbackRemedy: string, prefix = ''): { detail: string; remedy: string } {
  if (isVaultError(error)) return { detail: `${prefix}${error.message}`, remedy: error.hint ?? fallbackRemedy };
  return { detail: `${prefix}${firstLine(error)}`, remedy: fallbackRemedy };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}
