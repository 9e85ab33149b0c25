import { readFile } from 'node:fs/promises';
import { parse } from 'ini';
import { VaultError } from '../errors.js';
import type { ProfileSection } from './profileSection.js';

/** The parsed config file: raw profile sections by profile name. */
export interface ConfigFile {
  path: string;
  profiles: Map<string, ProfileSection>;
}

/**
 * Parses `~/.aws/config`. Sections are `[default]` and `[profile NAME]` as the AWS CLI writes them;
 * a bare `[NAME]` is accepted too (aws-vault does), but `[profile NAME]` wins when both exist.
 * `[sso-session …]` and `[services …]` sections are not profiles and are skipped.
 */
export function parseConfigFile(text: string, path: string): ConfigFile {
  if (text.includes('\u0000')) {
    throw new VaultError('CONFIG_PARSE', `${path} is not a text file (it contains NUL bytes)`, {
      hint: 'point AWS_CONFIG_FILE at your AWS config file',
    });
  }
  const unclosed = text.split(/\r?\n/).findIndex((line) => /^\s*\[[^\]]*$/.test(line));
  if (unclosed >= 0) {
    throw new VaultError('CONFIG_PARSE', `${path} line ${unclosed + 1}: section header has no closing ']'`, {
      hint: 'fix the section header, e.g. [profile NAME]',
    });
  }
  let data: Record<string, unknown>;
  try {
    // Section names are escaped so `[profile a.b]` stays one section; `;`/`#` start comments as in the AWS CLI.
    data = parse(escapeSectionDots(text)) as Record<string, unknown>;
  } catch (cause) {
    throw new VaultError('CONFIG_PARSE', `${path} could not be parsed as an ini file`, { cause });
  }
  const profiles = new Map<string, ProfileSection>();
  const bare = new Map<string, ProfileSection>();
  for (const [header, body] of Object.entries(data)) {
    if (body === null || typeof body !== 'object') continue; // a setting outside any section
    const section = toSection(body as Record<string, unknown>);
    const trimmed = header.trim();
    if (trimmed === 'default') {
      profiles.set('default', { ...section, name: 'default' });
    } else if (/^profile\s+/.test(trimmed)) {
      const name = trimmed.replace(/^profile\s+/, '').trim();
      profiles.set(name, { ...section, name });
    } else if (!/^(sso-session|services)\s/.test(trimmed)) {
      bare.set(trimmed, { ...section, name: trimmed });
    }
  }
  for (const [name, section] of bare) if (!profiles.has(name)) profiles.set(name, section);
  return { path, profiles };
}

/** ini nests `[profile a.b]` as a.b unless the dot is escaped; profile names may contain dots. */
function escapeSectionDots(text: string): string {
  return text.replace(/^(\s*\[)([^\]\n]*)(\])/gm, (_m, open: string, name: string, close: string) =>
    open + name.replace(/\./g, '\\.') + close,
  );
}

function toSection(body: Record<string, unknown>): Omit<ProfileSection, 'name'> {
  const section: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) {
    if (typeof value === 'string') section[key.trim()] = stripInlineComment(value).trim();
    else if (typeof value === 'boolean') section[key.trim()] = String(value);
  }
  return section;
}

/** `key = value ; comment` — the AWS CLI treats ` ;` and ` #` after a value as a comment. */
function stripInlineComment(value: string): string {
  const match = /\s[;#]/.exec(value);
  return match ? value.slice(0, match.index) : value;
}

/** Reads and parses the file; a missing file is an empty config, as for the AWS CLI. */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { path, profiles: new Map() };
    throw new VaultError('CONFIG_PARSE', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {
      hint: 'check the file exists and is readable, or set AWS_CONFIG_FILE',
      cause: error,
    });
  }
  return parseConfigFile(text, path);
}
