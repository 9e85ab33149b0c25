import { Argument, Command, CommanderError, Option } from 'commander';
import { VaultError, isVaultError } from '@vault/core';
import { execNamesProfile } from './commands/profileArgument.js';
import { Context, type GlobalOptions } from './context.js';
import { checkDriver } from './prompt/mfaPrompt.js';
import { createLogger } from './logger.js';
import { VERSION } from './version.js';

/** A command: parsed input in, exit code out. Only bin.ts ends the process. */
export type CommandRun<I> = (input: I, context: Context) => Promise<number>;

const BACKENDS = 'keychain (also secret-service, wincred), file or pass';

/**
 * Builds the command table. Each command's module is imported only when that command runs,
 * so `vault exec` with cached credentials never loads the AWS SDK or the server.
 */
function program(run: (load: () => Promise<CommandRun<any>>, input: unknown) => Promise<void>, argv: string[]): Command {
  const root = new Command('vault')
    .description('Keeps AWS keys in the OS keychain and hands out short-lived credentials')
    .version(VERSION, '--version')
    .addOption(new Option('--backend <name>', `secret backend: ${BACKENDS}`).env('AWS_VAULT_BACKEND'))
    .addOption(new Option('--prompt <driver>', 'how to ask for MFA codes: terminal, ykman, zenity, kdialog or osascript').env('AWS_VAULT_PROMPT'))
    .option('--debug', 'log to stderr (secrets redacted)')
    .option('--file-dir <dir>', 'directory of the file backend (AWS_VAULT_FILE_DIR; default ~/.awsvault/keys)')
    .option('--pass-dir <dir>', 'password store of the pass backend (AWS_VAULT_PASS_PASSWORD_STORE_DIR)')
    .option('--pass-cmd <program>', 'the pass program (AWS_VAULT_PASS_CMD; default pass)')
    .option('--pass-prefix <prefix>', 'folder of the entries in the password store (AWS_VAULT_PASS_PREFIX)')
    .addOption(new Option('--keychain <name>', 'aws-vault only: refused (vault uses the default keychain)').hideHelp())
    .addOption(new Option('--secret-service-collection <name>', 'aws-vault only: refused (vault uses the default collection)').hideHelp());

  root
    .command('add')
    .description('store a long-term access key for a profile (replaces an existing one)')
    .argument('<profile>')
    .option('--env', 'read the key from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY')
    .option('--add-config', 'add [profile NAME] to the config file when it has none (the default)')
    .option('--no-add-config', 'leave the config file alone')
    .action((profile: string, opts: object) => run(() => import('./commands/add.js').then((m) => m.add), { profile, ...opts }));

  root
    .command('remove')
    .alias('rm')
    .description("delete a profile's stored key and the credentials cached from it")
    .argument('<profile>')
    .option('-f, --force', 'do not ask for confirmation')
    .action((profile: string, opts: object) => run(() => import('./commands/remove.js').then((m) => m.remove), { profile, ...opts }));

  root
    .command('list')
    .alias('ls')
    .description('list profiles, stored keys and cached credentials (STS results)')
    .option('--profiles', 'only the profile names')
    .option('--credentials', 'only the names of profiles with a stored key')
    .option('--sessions', 'only the cached credentials (aws-vault: sessions)')
    .action((opts: object) => run(() => import('./commands/list.js').then((m) => m.list), opts));

  root
    .command('clear')
    .description('remove cached credentials (of one profile, or all)')
    .argument('[profile]')
    .action((profile: string | undefined, opts: object) => run(() => import('./commands/clear.js').then((m) => m.clear), { profile, ...opts }));

  root
    .command('exec')
    .description('run a command with credentials for a profile (default: AWS_PROFILE)')
    .argument('[profile]', 'the profile (default: AWS_PROFILE; then use `vault exec -- COMMAND`)')
    .argument('[command...]', 'the command and its arguments (default: $SHELL)')
    .option('-d, --duration <duration>', 'how long the credentials last (e.g. 1h, 15m)')
    .option('-n, --no-session', 'skip GetSessionToken; send MFA with AssumeRole')
    .option('-t, --mfa-token <code>', 'the MFA code to use')
    .option('--region <region>', 'the region for the command and STS')
    .option('-s, --server', 'serve credentials from the local ECS endpoint instead of env keys')
    .addOption(new Option('--ecs-server', 'the same as --server (aws-vault name)').hideHelp())
    .option('--ec2-server', 'serve credentials from a local IMDSv2 endpoint')
    .option('--lazy', 'with a server: make the first STS call on the first request')
    .option('--stdout', 'IAM Identity Center: print the sign-in URL and code, do not open a browser')
    // aws-vault's deprecated `exec --json`, still in many credential_process lines.
    .addOption(new Option('-j, --json', 'print credentials as credential_process JSON (the same as `export --format json`)').hideHelp())
    .action((profile: string | undefined, command: string[], opts: object) => {
      // `vault exec -- COMMAND`: no profile before `--`, so the first word is the command's.
      const named = profile !== undefined && execNamesProfile(argv);
      const words = named || profile === undefined ? command : [profile, ...command];
      return run(() => import('./commands/exec.js').then((m) => m.exec), { profile: named ? profile : undefined, command: words, ...opts });
    });

  root
    .command('export')
    .description('print credentials for a profile (credential_process: --format json)')
    .argument('[profile]', 'the profile (default: AWS_PROFILE)')
    .addOption(new Option('--format <format>', 'output format').choices(['env', 'export-env', 'json', 'ini']).default('env'))
    .option('-d, --duration <duration>', 'how long the credentials last (e.g. 1h, 15m)')
    .option('-n, --no-session', 'skip GetSessionToken; send MFA with AssumeRole')
    .option('-t, --mfa-token <code>', 'the MFA code to use')
    .option('--region <region>', 'the region to print and to call STS in')
    .option('--stdout', 'IAM Identity Center: print the sign-in URL and code, do not open a browser')
    .action((profile: string, opts: object) => run(() => import('./commands/export.js').then((m) => m.exportCommand), { profile, ...opts }));

  root
    .command('login')
    .description('open the AWS console signed in as a profile (default: AWS_PROFILE)')
    .argument('[profile]')
    .option('--stdout', 'print the sign-in URL (and an IAM Identity Center sign-in) instead of opening a browser')
    .option('--path <path>', 'the console page to open, e.g. s3/home')
    .option('-d, --duration <duration>', 'how long the console session lasts (e.g. 1h)')
    .option('-n, --no-session', 'skip GetSessionToken; send MFA with AssumeRole')
    .option('-t, --mfa-token <code>', 'the MFA code to use')
    .option('--region <region>', "the console's region")
    .action((profile: string | undefined, opts: object) => run(() => import('./commands/login.js').then((m) => m.login), { profile, ...opts }));

  root
    .command('rotate')
    .description("replace a profile's stored key with a new one (default: AWS_PROFILE)")
    .argument('[profile]')
    .option('-n, --no-session', 'call IAM with the stored key itself, not an MFA session')
    .option('-t, --mfa-token <code>', 'the MFA code to use')
    .action((profile: string | undefined, opts: object) => run(() => import('./commands/rotate.js').then((m) => m.rotate), { profile, ...opts }));

  root
    .command('migrate-backend')
    .description('copy stored keys from one backend to another; each is read back before any is deleted')
    .requiredOption('--from <backend>', `the backend to copy from: ${BACKENDS}`)
    .requiredOption('--to <backend>', 'the backend to copy to')
    .option('--profile <profile>', 'only this profile (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--dry-run', 'say what would be copied; write and delete nothing')
    .option('--overwrite', 'replace a key the target already holds')
    .option('--delete-source', 'delete each key from the source once its copy read back from the target')
    .action((opts: object) => run(() => import('./commands/migrateBackend.js').then((m) => m.migrateBackend), opts));

  root
    .command('server')
    .description('the background credential daemon')
    .addArgument(new Argument('<action>', 'start (idempotent, detaches), stop, status, or run (foreground)').choices(['start', 'stop', 'status', 'run']))
    .addOption(new Option('--format <format>', 'status output (json includes relaySocket, for `vault relay`)').choices(['text', 'json']).default('text'))
    .action((action: string, opts: object) => run(() => import('./commands/server.js').then((m) => m.server), { action, ...opts }));

  root
    .command('relay')
    .description('forward the container credential route from a container network to the daemon (the relay image runs this)')
    .requiredOption('--socket <path>', "the daemon's relay socket (relaySocket in `vault server status --format json`)")
    .option('--listen <address:port>', 'where containers reach the relay', '169.254.170.2:80')
    .action((opts: object) => run(() => import('./commands/relay.js').then((m) => m.relay), opts));

  const session = root.command('session').description('long-lived sessions in the daemon, for any SDK');
  session
    .command('start')
    .description('start a session and print the shell lines that point SDKs at it: eval "$(vault session start P)"')
    .argument('<profile>')
    .option('--imds', 'serve it as EC2 instance metadata (IMDSv2) on a port of its own')
    .option('-d, --duration <duration>', 'role credential duration (e.g. 1h)')
    .option('-t, --mfa-token <code>', 'the MFA code to use')
    .option('--region <region>', 'the region for the session')
    .option('--lazy', 'make the first STS call on the first request')
    .addOption(new Option('--format <format>', 'output format').choices(['shell', 'json']).default('shell'))
    .option('--stdout', 'IAM Identity Center: print the sign-in URL and code, do not open a browser')
    .action((profile: string, opts: object) => run(() => import('./commands/session.js').then((m) => m.sessionStart), { profile, ...opts }));
  session
    .command('ls')
    .alias('list')
    .description('list sessions: profile, id, endpoint, time left, requests served, state')
    .action((opts: object) => run(() => import('./commands/session.js').then((m) => m.sessionList), opts));
  session
    .command('stop')
    .description('stop a session by id or profile, or all of them')
    .argument('[id-or-profile]')
    .option('--all', 'stop every session')
    .action((target: string | undefined, opts: object) => run(() => import('./commands/session.js').then((m) => m.sessionStop), { target, ...opts }));
  session
    .command('renew')
    .description('revive a session whose MFA session or IAM Identity Center sign-in ran out (same URI and token)')
    .argument('<id>')
    .option('-t, --mfa-token <code>', 'the MFA code to use')
    .option('--stdout', 'IAM Identity Center: print the sign-in URL and code, do not open a browser')
    .action((id: string, opts: object) => run(() => import('./commands/session.js').then((m) => m.sessionRenew), { id, ...opts }));

  root
    .command('completion')
    .description('print the shell completion script: source <(vault completion bash)')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => run(() => import('./commands/completion.js').then((m) => m.completion), { shell }));
  root
    .command('doctor')
    .description('check the config file, keyring, daemon, STS endpoints and clock: one line each, ok/warn/fail')
    .option('--profile <profile>', 'also call GetCallerIdentity with this profile\'s credentials')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((opts: object) => run(() => import('./commands/doctor.js').then((m) => m.doctor), opts));
  root
    .command('__complete', { hidden: true })
    .argument('[words...]')
    .action((words: string[]) => run(() => import('./commands/completion.js').then((m) => m.complete), { words, program: root }));

  return root;
}

/** Parses argv, runs one command, returns its exit code. Errors become one line on stderr. */
export async function main(argv: string[], deps: ConstructorParameters<typeof Context>[2] = {}): Promise<number> {
  let exitCode = 0;
  let context: Context | undefined;
  const stderr = deps.stderr ?? process.stderr;
  const cli = program(async (load, input) => {
    const globals = cli.opts<GlobalOptions>();
    // A backend named by AWS_VAULT_BACKEND is the environment's choice, not a flag: leave it to the
    // keyring to read, so a bad value is reported as AWS_VAULT_BACKEND rather than as --backend.
    if (cli.getOptionValueSource('backend') === 'env') delete globals.backend;
    refuseAwsVaultOnlyFlags(globals);
    // As aws-vault: a prompt driver that does not exist is refused before anything runs.
    if (globals.prompt) checkDriver(globals.prompt);
    context = new Context(globals, await createLogger(globals.debug === true), deps);
    const command = await load();
    exitCode = await command(input, context);
  }, argv);
  const configure = (command: Command) => {
    command.exitOverride();
    command.configureOutput({
      writeOut: (text) => (deps.stdout ?? process.stdout).write(text),
      writeErr: (text) => stderr.write(text),
      // Commander's own usage errors ("error: unknown option …") as one `vault:` line with the
      // remedy, like every other error.
      outputError: (text, write) => write(`vault: ${text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')}; see \`${commandPath(command)} --help\`\n`),
    });
    command.commands.forEach(configure);
  };
  configure(cli);
  try {
    await cli.parseAsync(argv, { from: 'user' });
    if (argv.length === 0) {
      cli.outputHelp();
      return 2;
    }
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version "fail" with code 0; parse errors were already printed by commander.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (isVaultError(error)) {
      stderr.write(`vault: ${error.toLine()}\n`);
      context?.logger.debug({ code: error.code, cause: describeCause(error.cause) }, 'command failed');
      // 130 for a cancelled prompt, as a shell reports a command ended by ^C.
      return error.code === 'USAGE' ? 2 : error.code === 'CANCELLED' ? 130 : 1;
    }
    const wrapped = new VaultError('INTERNAL', `unexpected error: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, {
      hint: 'run with --debug and report it',
    });
    stderr.write(`vault: ${wrapped.toLine()}\n`);
    context?.logger.error({ err: error }, 'unexpected error');
    return 1;
  }
}

/**
 * aws-vault's --keychain and --secret-service-collection name a store of their own; vault's
 * keychain backend keeps items in the store the OS unlocks at login (keytar), so saying so beats
 * silently storing somewhere else than the person asked.
 */
function refuseAwsVaultOnlyFlags(globals: GlobalOptions & { keychain?: string; secretServiceCollection?: string }): void {
  if (globals.keychain !== undefined) {
    throw new VaultError('USAGE', '--keychain is an aws-vault flag vault does not take: vault keeps keys in your login keychain (service "vault")', {
      hint: 'drop --keychain; to keep keys apart use --backend file with --file-dir, or --backend pass with --pass-dir',
    });
  }
  if (globals.secretServiceCollection !== undefined) {
    throw new VaultError('USAGE', '--secret-service-collection is an aws-vault flag vault does not take: vault keeps keys in the default Secret Service collection (service "vault")', {
      hint: 'drop --secret-service-collection; to keep keys apart use --backend file with --file-dir, or --backend pass with --pass-dir',
    });
  }
}

/** `vault session start`: the words that reach a command, for a usage hint. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function describeCause(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  return cause instanceof Error ? `${cause.name}: ${cause.message.split('\n')[0]}` : String(cause);
}
