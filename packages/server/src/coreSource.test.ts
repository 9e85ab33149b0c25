import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  chainEnvironmentKey,
  CredentialKeyring,
  ManualClock,
  MemoryKeyring,
  type AssumeRoleInput,
  type Credentials,
  type GetSessionTokenInput,
  type StsGateway,
  type StsTarget,
} from '@vault/core';
import { coreSourceFactory } from './coreSource.js';
import { ManualScheduler } from './sessions/scheduler.js';
import { Session, type SessionKind } from './sessions/session.js';

/**
 * The daemon's sessions over the real credential chain (keyring caches included) with an
 * in-process STS: what a client is served over an hour, and what it costs upstream.
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const CONFIG = `
[profile central-account]
region = ap-northeast-1
mfa_serial = arn:aws:iam::111111111111:mfa/central-user

[profile plain]
region = eu-west-1
`;

class CountingSts implements StsGateway {
  getSessionTokenCalls = 0;
  assumeRoleCalls = 0;
  private n = 0;
  constructor(private readonly clock: ManualClock) {}
  async getSessionToken(_c: Credentials, _t: StsTarget, input: GetSessionTokenInput) {
    this.getSessionTokenCalls++;
    this.n++;
    return { accessKeyId: `ASIASESSION${this.n}`, secretAccessKey: `s-${this.n}`, sessionToken: `t-${this.n}`, expiration: new Date(this.clock.now() + (input.durationSeconds ?? 43_200) * 1000) };
  }
  async assumeRole(_c: Credentials, _t: StsTarget, input: AssumeRoleInput) {
    this.assumeRoleCalls++;
    this.n++;
    return { accessKeyId: `ASIAROLE${this.n}`, secretAccessKey: `s-${this.n}`, sessionToken: `t-${this.n}`, expiration: new Date(this.clock.now() + (input.durationSeconds ?? 3600) * 1000), assumedRoleArn: input.roleArn };
  }
  async getCallerIdentity() {
    return { account: '', arn: '', userId: '' };
  }
}

/** Counts the cached credentials written, the cost the keyring pays for every refetch. */
class CountingKeyring extends MemoryKeyring {
  sessionWrites = 0;
  override async set(key: string, value: string, label?: string): Promise<void> {
    if (key.startsWith('sts.')) this.sessionWrites++;
    return super.set(key, value, label);
  }
}

describe('daemon sessions over the credential chain', () => {
  let home: string;
  let clock: ManualClock;
  let scheduler: ManualScheduler;
  let sts: CountingSts;
  let keyring: CountingKeyring;

  beforeEach(async () => {
    home = mkdtempSync(join(tmpdir(), `vault-chain-fixes-${process.pid}-`));
    writeFileSync(join(home, 'config'), CONFIG, { mode: 0o600 });
    clock = new ManualClock(Date.UTC(2026, 0, 1, 9));
    scheduler = new ManualScheduler(clock);
    sts = new CountingSts(clock);
    keyring = new CountingKeyring();
    await new CredentialKeyring(keyring).set('central-account', { accessKeyId: 'AKIACENTRAL000000001', secretAccessKey: 'central-secret' });
    await new CredentialKeyring(keyring).set('plain', { accessKeyId: 'AKIAPLAIN00000000001', secretAccessKey: 'plain-secret' });
  });

  afterEach(() => rmSync(home, { recursive: true, force: true }));

  const startSession = async (profile: string, kind: SessionKind, mfaToken?: string) => {
    const factory = coreSourceFactory({ env: { AWS_CONFIG_FILE: join(home, 'config') }, homeDir: home, keyring: async () => keyring, sts, clock });
    const source = await factory.create({ profile, ...(mfaToken ? { mfaToken } : {}) });
    const session = new Session({ source, kind, clock, scheduler, random: () => 0.5 });
    await session.start();
    return session;
  };

  /** A client asking every minute for an hour: the least life it was handed, and the states seen. */
  const serveForAnHour = async (session: Session) => {
    let leastLifeMs = Infinity;
    let served = 0;
    const states: { at: number; state: string; serving: boolean }[] = [];
    const started = clock.now();
    for (let minute = 0; minute <= 60; minute++) {
      const prepared = session.currentCredentials() ?? (await session.credentialsFor().catch(() => undefined));
      if (prepared) {
        served++;
        leastLifeMs = Math.min(leastLifeMs, prepared.expiresAt - clock.now());
      }
      states.push({ at: (clock.now() - started) / MINUTE, state: session.state, serving: prepared !== undefined });
      await scheduler.advance(MINUTE);
    }
    return { leastLifeMs, served, states };
  };

  it('a GetSessionToken-only MFA profile never serves less than 15 min, shows needs-mfa before the end, and stops asking', async () => {
    const session = await startSession('central-account', 'ecs', '123456');
    const { leastLifeMs, states } = await serveForAnHour(session);
    expect(leastLifeMs).toBeGreaterThanOrEqual(15 * MINUTE);
    // One MFA session, written once; no refetch loop over the cached one.
    expect(sts.getSessionTokenCalls).toBe(1);
    expect(keyring.sessionWrites).toBe(1);
    expect(session.credentials.fetches).toBeLessThanOrEqual(2);
    // needs-mfa shows while the credentials are still being served: ahead of time.
    expect(states.some((s) => s.state === 'needs-mfa' && s.serving)).toBe(true);
    expect(states.at(-1)!.state).toBe('needs-mfa');
    await session.stop();
  });

  it('an IMDS session of the same profile never serves less than 30 min', async () => {
    const session = await startSession('central-account', 'imds', '123456');
    const { leastLifeMs } = await serveForAnHour(session);
    expect(leastLifeMs).toBeGreaterThanOrEqual(30 * MINUTE);
    expect(sts.getSessionTokenCalls).toBe(1);
    expect(keyring.sessionWrites).toBe(1);
    await session.stop();
  });

  it('a GetSessionToken-only profile without MFA gets a new session at each refresh and keeps 15 min', async () => {
    const session = await startSession('plain', 'ecs');
    const { leastLifeMs, served } = await serveForAnHour(session);
    expect(leastLifeMs).toBeGreaterThanOrEqual(15 * MINUTE);
    expect(served).toBe(61);
    // 1 h sessions refreshed from 20 min left: one at the start, one 40 min in.
    expect(sts.getSessionTokenCalls).toBe(2);
    expect(keyring.sessionWrites).toBe(2);
    await session.stop();
  });
});

describe('commands asking the daemon to resolve a profile', () => {
  const SHELL_CONFIG = `
[profile from-env]
role_arn = arn:aws:iam::222222222222:role/from-env
credential_source = Environment

[profile from-ecs]
role_arn = arn:aws:iam::222222222222:role/from-ecs
credential_source = EcsContainer
`;

  it.each(['from-env', 'from-ecs'])(
    'a profile that starts from the shell’s own credentials (%s) is left to the command: DAEMON_MISMATCH, no STS call, even with keys in the daemon’s environment',
    async (profile) => {
      const home = mkdtempSync(join(tmpdir(), `vault-shell-source-${process.pid}-`));
      try {
        writeFileSync(join(home, 'config'), SHELL_CONFIG, { mode: 0o600 });
        const clock = new ManualClock(Date.UTC(2026, 0, 1, 9));
        const sts = new CountingSts(clock);
        const env = {
          AWS_CONFIG_FILE: join(home, 'config'),
          AWS_ACCESS_KEY_ID: 'AKIADAEMONSHELL00001',
          AWS_SECRET_ACCESS_KEY: 'daemon-shell-secret',
          AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://127.0.0.1:9/creds',
        };
        const factory = coreSourceFactory({ env, homeDir: home, keyring: async () => new MemoryKeyring(), sts, clock });
        const error = await factory.resolve!({ profile, environment: chainEnvironmentKey(env, home) }).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'DAEMON_MISMATCH' });
        expect((error as Error).message).toContain(`profile ${profile}`);
        expect(sts.assumeRoleCalls + sts.getSessionTokenCalls).toBe(0);
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    },
  );
});
