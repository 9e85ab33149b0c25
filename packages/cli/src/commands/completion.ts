import type { Argument, Command, Option } from 'commander';
import { VaultError, configFilePath, readConfigFile } from '@vault/core';
import type { Context } from '../context.js';

/**
 * Shell completion from commander's own command table, walked once per TAB: each shell's script is
 * a few lines that hand the words typed so far to `vault __complete -- WORDS…` and offer what it
 * prints, so a new command or flag completes without touching any list. Profile names come from
 * the config file; session ids from the daemon, only when one already runs (a TAB never starts it).
 * aws-vault does the same through kingpin's hidden --completion-bash flag.
 */
export const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

export interface CompletionInput {
  shell: string;
}

export async function completion(input: CompletionInput, ctx: Context): Promise<number> {
  if (!(SHELLS as readonly string[]).includes(input.shell)) {
    throw new VaultError('USAGE', `no completion for the shell "${input.shell}"`, {
      hint: `use one of ${SHELLS.join(', ')}, e.g. source <(vault completion bash)`,
    });
  }
  ctx.stdout.write(SCRIPTS[input.shell as Shell]);
  return 0;
}

const SCRIPTS: Record<Shell, string> = {
  // COMP_WORDS from the word after `vault` up to the one under the cursor; -o default: files
  // when vault offers nothing (the command after `exec PROFILE --`).
  bash: `# vault completion for bash: source <(vault completion bash), or save it under
# ~/.local/share/bash-completion/completions/vault
_vault_complete() {
  local IFS=$'\\n'
  COMPREPLY=($(command vault __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _vault_complete vault
`,
  zsh: `#compdef vault
# vault completion for zsh: source <(vault completion zsh) after compinit, or save it as _vault on $fpath
_vault() {
  local -a candidates
  candidates=("\${(@f)$(command vault __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=(\${candidates:#})
  if (( \${#candidates} )); then compadd -a candidates; else _files; fi
}
compdef _vault vault
`,
  fish: `# vault completion for fish: vault completion fish > ~/.config/fish/completions/vault.fish
function __vault_complete
    set -l words (commandline -opc)
    set -e words[1]
    command vault __complete -- $words (commandline -ct) 2>/dev/null
end
complete -c vault -f -a '(__vault_complete)'
`,
};

export interface CompleteInput {
  words: string[];
  program: Command;
}

/** `vault __complete -- WORDS…`: the candidates for the last word, one a line. */
export async function complete(input: CompleteInput, ctx: Context): Promise<number> {
  const candidates = await candidatesFor(input.program, input.words, ctx);
  for (const candidate of candidates) ctx.stdout.write(`${candidate}\n`);
  return 0;
}

export async function candidatesFor(program: Command, words: string[], ctx: Context): Promise<string[]> {
  const typed = words.length > 0 ? words : [''];
  const current = typed[typed.length - 1]!;
  let command = program;
  let positional = 0;
  let valueFor: Option | undefined;
  for (const word of typed.slice(0, -1)) {
    if (valueFor) {
      valueFor = undefined;
      continue;
    }
    if (word === '--') return []; // the command vault runs: the shell's own completion
    if (word.startsWith('-')) {
      const option = optionsOf(command).find((o) => o.long === word.split('=')[0] || o.short === word);
      if (option && (option.required || option.optional) && !word.includes('=')) valueFor = option;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub && positional === 0) {
      command = sub;
      continue;
    }
    positional += 1;
  }
  const matching = (list: Iterable<string>) => [...new Set(list)].filter((c) => c.startsWith(current)).sort();
  if (valueFor) return matching(valueFor.argChoices ?? []);
  if (current.startsWith('-')) return matching(optionsOf(command).flatMap((o) => (o.long ? [o.long] : o.short ? [o.short] : [])));
  const help = command.createHelp();
  const subcommands = help.visibleCommands(command).filter((c) => c.name() !== 'help');
  if (subcommands.length > 0) return matching(subcommands.map((c) => c.name()));
  const argument: Argument | undefined = command.registeredArguments[positional] ?? lastVariadic(command);
  if (!argument) return [];
  if (argument.argChoices) return matching(argument.argChoices);
  const kind = ARGUMENT_VALUES[`${command.parent?.name() === 'session' ? 'session ' : ''}${argument.name()}`];
  if (kind === undefined) return [];
  const values = [...(kind.includes('profile') ? await profileNames(ctx) : []), ...(kind.includes('session') ? await sessionIds(ctx) : [])];
  return matching(values);
}

/** Which arguments take profile names or session ids, by their name in main.ts. */
const ARGUMENT_VALUES: Record<string, Array<'profile' | 'session'>> = {
  profile: ['profile'],
  'session profile': ['profile'],
  'session id-or-profile': ['session', 'profile'],
  'session id': ['session'],
};

function lastVariadic(command: Command): Argument | undefined {
  const last = command.registeredArguments[command.registeredArguments.length - 1];
  return last?.variadic ? last : undefined;
}

/** The command's visible options and those of the commands above it (commander takes them anywhere). */
function optionsOf(command: Command): Option[] {
  const options: Option[] = [];
  for (let c: Command | null = command; c; c = c.parent) options.push(...c.createHelp().visibleOptions(c));
  return options;
}

async function profileNames(ctx: Context): Promise<string[]> {
  try {
    return [...(await readConfigFile(configFilePath(ctx.env, ctx.homeDir))).profiles.keys()];
  } catch {
    return []; // a broken config file: nothing to offer (`vault doctor` says what is wrong)
  }
}

async function sessionIds(ctx: Context): Promise<string[]> {
  try {
    const [{ DaemonClient }, { stateDir }] = await Promise.all([import('@vault/server/client'), import('../daemonLink.js')]);
    const client = new DaemonClient({ stateDir: stateDir(ctx), timeoutMs: 1_000 });
    if (!(await client.isRunning())) return [];
    return (await client.listSessions()).map((s) => s.id);
  } catch {
    return [];
  }
}
