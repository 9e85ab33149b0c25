import { homedir } from 'node:os';
import { join } from 'node:path';

export type Env = Record<string, string | undefined>;

/** `AWS_CONFIG_FILE` or `~/.aws/config`, as every AWS SDK resolves it. */
export function configFilePath(env: Env, home: string = env.HOME ?? homedir()): string {
  const override = env.AWS_CONFIG_FILE;
  if (override) return override.startsWith('~/') ? join(home, override.slice(2)) : override;
  return join(home, '.aws', 'config');
}
