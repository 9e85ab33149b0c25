import { homedir } from 'node:os';
import {
  ConfigLoader,
  CredentialChain,
  CredentialKeyring,
  SdkStsGateway,
  SessionKeyring,
  configFilePath,
  mfaTokenSource,
  openKeyring,
  readConfigFile,
  systemClock,
  type ChainOptions,
  type Clock,
  type Keyring,
  type Logger,
  type StsGateway,
} from '@vault/core';
import { mfaPrompt } from './prompt/mfaPrompt.js';
import { ask as terminalAsk, type Ask } from './prompt/terminal.js';

export interface GlobalOptions {
  backend?: string;
  prompt?: string;
  debug?: boolean;
}

/** Everything a command needs from the outside world; built lazily so a command pays only for what it uses. */
export class Context {
  readonly env: NodeJS.ProcessEnv;
  readonly clock: Clock;
  readonly ask: Ask;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** A file-backend passphrase typed at the prompt, handed to a daemon this command starts. */
  unlockedPassphrase: string | undefined;
  /** Set by the daemon (`vault server run`): keep decrypted file-keyring items in memory. */
  rememberDecrypted = false;
  private keyringPromise: Promise<Keyring> | undefined;
  private configPromise: Promise<ConfigLoader> | undefined;
  private stsGateway: StsGateway | undefined;

  constructor(
    readonly options: GlobalOptions,
    readonly logger: Logger,
    deps: { env?: NodeJS.ProcessEnv; clock?: Clock; ask?: Ask; stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream } = {},
  ) {
    this.env = deps.env ?? process.env;
    this.clock = deps.clock ?? systemClock;
    this.ask = deps.ask ?? terminalAsk;
    this.stdout = deps.stdout ?? process.stdout;
    this.stderr = deps.stderr ?? process.stderr;
  }

  get homeDir(): string {
    return this.env.HOME ?? homedir();
  }

  config(region?: string): Promise<ConfigLoader> {
    if (region !== undefined) return readConfigFile(configFilePath(this.env, this.homeDir)).then((f) => new ConfigLoader(f, { env: this.env, region }));
    this.configPromise ??= readConfigFile(configFilePath(this.env, this.homeDir)).then((f) => new ConfigLoader(f, { env: this.env }));
    return this.configPromise;
  }

  keyring(): Promise<Keyring> {
    this.keyringPromise ??= openKeyring({
      backend: this.options.backend,
      env: this.env,
      homeDir: this.homeDir,
      rememberDecrypted: this.rememberDecrypted,
      passphrase: async () => {
        if (this.env.AWS_VAULT_FILE_PASSPHRASE !== undefined) return this.env.AWS_VAULT_FILE_PASSPHRASE;
        this.unlockedPassphrase = await this.ask('Enter passphrase to unlock the vault file keyring: ', { hidden: true });
        return this.unlockedPassphrase;
      },
    });
    return this.keyringPromise;
  }

  async credentialKeyring(): Promise<CredentialKeyring> {
    return new CredentialKeyring(await this.keyring());
  }

  async sessionKeyring(): Promise<SessionKeyring> {
    return new SessionKeyring(await this.keyring());
  }

  sts(): StsGateway {
    this.stsGateway ??= new SdkStsGateway();
    return this.stsGateway;
  }

  promptDriver(): string {
    return this.options.prompt ?? this.env.AWS_VAULT_PROMPT ?? 'terminal';
  }

  /** The credential chain for a profile, with MFA codes from --mfa-token, mfa_process, then the prompt. */
  async chain(profileName: string, options: ChainOptions & { region?: string; mfaToken?: string }): Promise<CredentialChain> {
    const config = await this.config(options.region);
    const profile = config.load(profileName);
    const keyring = await this.keyring();
    return new CredentialChain(
      profile,
      {
        credentials: new CredentialKeyring(keyring),
        sessions: new SessionKeyring(keyring),
        sts: this.sts(),
        clock: this.clock,
        env: this.env,
        logger: this.logger,
        // Otherwise the next command asks for an MFA code again without saying why.
        warn: (line) => this.stderr.write(`vault: note: ${line}\n`),
        mfa: mfaTokenSource({
          explicit: options.mfaToken,
          mfaProcess: profile.mfaProcess,
          prompt: mfaPrompt(this.promptDriver(), this.ask),
          env: this.env,
        }),
      },
      options,
    );
  }
}
