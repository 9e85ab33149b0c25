import { VaultError } from '@vault/core';

/**
 * The profile a command works on: the one named, else AWS_PROFILE (as `exec`, `export`, `login`
 * and `rotate` do for an aws-vault user whose shell already selects a profile).
 */
export function profileOrAwsProfile(named: string | undefined, env: NodeJS.ProcessEnv, command: string): string {
  if (named !== undefined && named !== '') return named;
  const fromEnv = env.AWS_PROFILE;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  throw new VaultError('USAGE', `vault ${command} needs a profile`, {
    hint: `name it (\`vault ${command} PROFILE\`) or set AWS_PROFILE`,
  });
}

/** Options (of vault and of exec) that take a value as the next word. */
const TAKES_VALUE = new Set([
  '--backend',
  '--prompt',
  '--file-dir',
  '--pass-dir',
  '--pass-cmd',
  '--pass-prefix',
  '--keychain',
  '--secret-service-collection',
  '-d',
  '--duration',
  '-t',
  '--mfa-token',
  '--region',
]);

/**
 * Whether `exec`'s words name a profile before `--`. commander drops the `--` itself, so
 * `vault exec -- aws s3 ls` (profile from AWS_PROFILE, command `aws s3 ls`) and
 * `vault exec aws s3 ls` (profile `aws`) reach the action alike; this tells them apart.
 */
export function execNamesProfile(argv: string[]): boolean {
  let i = 0;
  // The words before `exec` are vault's own options.
  for (; i < argv.length && argv[i] !== 'exec'; i++) if (TAKES_VALUE.has(argv[i]!)) i++;
  for (i += 1; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') return false;
    if (word.startsWith('-')) {
      if (TAKES_VALUE.has(word)) i++;
      continue;
    }
    return true;
  }
  return false;
}
