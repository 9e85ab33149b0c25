import { homedir } from 'node:os';
import {
  ConfigLoader,
  CredentialChain,
  CredentialKeyring,
  SdkStsGateway,
  CredentialCache,
  configFilePath,
  mfaTokenSource,
  openKeyring,
  readConfigFile,
  systemClock,
  type ChainOptions,
  type Clock,
  type Keyring,
  type Logger,
  type MfaPrompt,
  type StsGateway,
  VAULT_SECRET_VARIABLES,
  withoutVaultSecrets,
} from '@vault/core';
import { PASSPHRASE_FD_VARIABLE } from './daemonPassphrase.js';
import { chooseDriver, mfaPrompt } from './prompt/mfaPrompt.js';
import { hasTerminal } from './prompt/terminalOutput.js';
import { ssoSignInPrompt } from './prompt/ssoSignIn.js';
import { ask as terminalAsk, type Ask } from './prompt/terminal.js';

export interface GlobalOptions {
  backend?: string;
  prompt?: string;
  debug?: boolean;
  fileDir?: string;
  passDir?: string;
  passCmd?: string;
  passPrefix?: string;
}

/** Everything a command needs from the outside world; built lazily so a command pays only for what it uses. */
export class Context {
  /**
   * The environment vault was given, without its own secrets (AWS_VAULT_FILE_PASSPHRASE) and the
   * daemon's passphrase-fd marker: what every process vault starts is built from.
   */
  readonly env: NodeJS.ProcessEnv;
  readonly clock: Clock;
  readonly ask: Ask;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /**
   * The file-backend passphrase: from AWS_VAULT_FILE_PASSPHRASE, typed at the prompt, or (in the
   * daemon) read from the pipe its starter wrote it to. Handed to a daemon this command starts over
   * a pipe; never put in an environment.
   */
  filePassphrase: string | undefined;
  /** In a daemon `vault server start` spawned: the fd its passphrase arrives on. */
  readonly passphraseFd: number | undefined;
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
    const given = deps.env ?? process.env;
    this.filePassphrase = given.AWS_VAULT_FILE_PASSPHRASE;
    const fd = Number.parseInt(given[PASSPHRASE_FD_VARIABLE] ?? '', 10);
    this.passphraseFd = Number.isInteger(fd) && fd > 2 ? fd : undefined;
    const env = withoutVaultSecrets(given);
    delete env[PASSPHRASE_FD_VARIABLE];
    this.env = env;
    if (given === process.env) {
      // Read once: gone from this process's own environment too, so nothing that inherits it (a
      // prompt driver, a library spawning a helper) is handed it.
      for (const name of [...VAULT_SECRET_VARIABLES, PASSPHRASE_FD_VARIABLE]) delete process.env[name];
    }
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
    this.keyringPromise ??= this.openBackend(this.options.backend);
    return this.keyringPromise;
  }

  /** A keyring of the named backend (default: the chosen one), with this command's settings and passphrase. */
  openBackend(backend: string | undefined): Promise<Keyring> {
    return openKeyring({
      backend,
      env: this.env,
      homeDir: this.homeDir,
      rememberDecrypted: this.rememberDecrypted,
      ...(this.options.fileDir === undefined ? {} : { fileDir: this.options.fileDir }),
      pass: { dir: this.options.passDir, command: this.options.passCmd, prefix: this.options.passPrefix },
      passphrase: async () => {
        this.filePassphrase ??= await this.ask('Enter passphrase to unlock the vault file keyring: ', { hidden: true });
        return this.filePassphrase;
      },
    });
  }

  async credentialKeyring(): Promise<CredentialKeyring> {
    return new CredentialKeyring(await this.keyring());
  }

  async credentialCache(): Promise<CredentialCache> {
    return new CredentialCache(await this.keyring());
  }

  sts(): StsGateway {
    this.stsGateway ??= new SdkStsGateway();
    return this.stsGateway;
  }

  /** The driver named by --prompt / AWS_VAULT_PROMPT, else as aws-vault chooses (see chooseDriver). */
  promptDriver(): string {
    return chooseDriver({ explicit: this.explicitPrompt(), env: this.env, terminal: hasTerminal() });
  }

  /** The MFA prompt of the chosen driver. */
  mfaPrompt(): MfaPrompt {
    return mfaPrompt(this.promptDriver(), this.ask, this.env, { chosenForMe: !this.explicitPrompt() });
  }

  private explicitPrompt(): string | undefined {
    return this.options.prompt || this.env.AWS_VAULT_PROMPT || undefined;
  }

  /** The credential chain for a profile, with MFA codes from --mfa-token, mfa_process, then the prompt. */
  async chain(profileName: string, options: ChainOptions & { region?: string; mfaToken?: string; stdout?: boolean }): Promise<CredentialChain> {
    const config = await this.config(options.region);
    const profile = config.load(profileName);
    const keyring = await this.keyring();
    return new CredentialChain(
      profile,
      {
        credentials: new CredentialKeyring(keyring),
        cache: new CredentialCache(keyring),
        sts: this.sts(),
        clock: this.clock,
        env: this.env,
        logger: this.logger,
        // Otherwise the next command asks for an MFA code again without saying why.
        warn: (line) => this.stderr.write(`vault: note: ${line}\n`),
        ssoSignIn: ssoSignInPrompt({ stderr: this.stderr, env: this.env, printOnly: options.stdout === true }),
        mfa: mfaTokenSource({
          explicit: options.mfaToken,
          mfaProcess: profile.mfaProcess,
          prompt: this.mfaPrompt(),
          env: this.env,
        }),
      },
      options,
    );
  }
}
