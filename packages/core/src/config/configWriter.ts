import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { VaultError } from '../errors.js';
import { parseConfigFile } from './configFile.js';

/**
 * Writes to ~/.aws/config. People keep comments, blank lines, ordering and settings of other tools
 * in that file, so vault never re-serialises it: it appends, and every byte that was there before
 * stays where it was. Writes are atomic (temp file beside the real one, fsync, rename, fsync of
 * the directory) and go to the file a symlinked config points at, so a dotfiles link survives.
 */

/** The header aws-vault writes for a profile: `[default]` for the default one, else `[profile NAME]`. */
export function profileHeader(profile: string): string {
  return profile === 'default' ? '[default]' : `[profile ${profile}]`;
}

/**
 * `text` with an empty section for the profile added at the end: a newline first when the file
 * does not end with one, a blank line between it and what came before, the file's own line ending.
 */
export function withProfileSection(text: string, profile: string): string {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  let prefix = '';
  if (text !== '') {
    if (!text.endsWith('\n')) prefix += eol;
    if (!/(\r?\n){2}$/.test(text + prefix)) prefix += eol;
  }
  return `${text}${prefix}${profileHeader(profile)}${eol}`;
}

export interface AddProfileResult {
  /** False when the file already had a section for the profile (nothing written). */
  added: boolean;
  /** The file written (the target of a symlinked config). */
  path: string;
}

/** Adds `[profile NAME]` to the config file unless it has a section for that profile already. */
export async function addProfileSection(configPath: string, profile: string): Promise<AddProfileResult> {
  if (!/^[^\s[\]]+$/.test(profile)) {
    throw new VaultError('USAGE', `the profile name ${JSON.stringify(profile)} cannot be a config section`, {
      hint: 'use a name without spaces or brackets, or pass --no-add-config',
    });
  }
  const path = await fs.realpath(configPath).catch(() => configPath);
  let text = '';
  let mode = 0o600;
  try {
    const [content, stat] = await Promise.all([fs.readFile(path), fs.stat(path)]);
    text = content.toString('utf8');
    mode = stat.mode & 0o777;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw writeError(path, error);
  }
  if (parseConfigFile(text, path).profiles.has(profile)) return { added: false, path };
  const dir = dirname(path);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 }).catch((error) => {
    throw writeError(path, error);
  });
  const temp = join(dir, `.${basename(path)}.vault-${randomBytes(6).toString('hex')}`);
  try {
    const handle = await fs.open(temp, 'wx', mode);
    try {
      await handle.writeFile(withProfileSection(text, profile));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, path);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw writeError(path, error);
  }
  // The rename is durable only once the directory entry is on disk.
  await fs
    .open(dir, 'r')
    .then(async (handle) => {
      await handle.sync().catch(() => undefined);
      await handle.close();
    })
    .catch(() => undefined);
  return { added: true, path };
}

function writeError(path: string, cause: unknown): VaultError {
  const code = (cause as NodeJS.ErrnoException).code ?? 'error';
  return new VaultError('CONFIG_WRITE', `could not add the profile to ${path} (${code}); the file is as it was`, {
    hint: 'check you can write to it and its directory, or pass --no-add-config',
    cause,
  });
}
