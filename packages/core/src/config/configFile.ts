import { readFile } from 'node:fs/promises';
import { VaultError } from '../errors.js';
import type { ProfileSection } from './profileSection.js';

/** The parsed config file: raw profile sections by profile name. */
export interface ConfigFile {
  path: string;
  profiles: Map<string, ProfileSection>;
  /** `[sso-session NAME]` sections by NAME, as the AWS CLI's `aws configure sso` writes them. */
  ssoSessions?: Map<string, Record<string, string>>;
}

/**
 * Parses `~/.aws/config`. Sections are `[default]` and `[profile NAME]` as the AWS CLI writes them;
 * a bare `[NAME]` is accepted too (aws-vault does), but `[profile NAME]` wins when both exist.
 * `[sso-session NAME]` sections are kept apart (profiles name them with `sso_session`);
 * `[services …]` sections are not profiles and are skipped.
 */
export function parseConfigFile(text: string, path: string): ConfigFile {
  if (text.includes('\u0000')) {
    throw new VaultError('CONFIG_PARSE', `${path} is not a text file (it contains NUL bytes)`, {
      hint: 'point AWS_CONFIG_FILE at your AWS config file',
    });
  }
  const sections = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  /** Set after `key =` with nothing after it: the indented lines below are that key's sub-section. */
  let inSubSection = false;
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = stripComment(raw).trim();
    if (line === '') continue;
    if (line.startsWith('[')) {
      const header = /^\[([^\]]*)\]/.exec(line);
      if (!header) {
        throw new VaultError('CONFIG_PARSE', `${path} line ${index + 1}: section header has no closing ']'`, {
          hint: 'fix the section header, e.g. [profile NAME]',
        });
      }
      const name = header[1]!.trim();
      current = sections.get(name) ?? {};
      sections.set(name, current);
      inSubSection = false;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || current === undefined) continue; // no setting, or one outside any section
    const indented = /^\s/.test(raw);
    if (inSubSection && indented) continue; // e.g. `s3 =` then `  addressing_style = path`: not a profile setting
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    inSubSection = value === '';
    if (!inSubSection) current[key] = value;
  }
  const profiles = new Map<string, ProfileSection>();
  const bare = new Map<string, ProfileSection>();
  const ssoSessions = new Map<string, Record<string, string>>();
  for (const [header, section] of sections) {
    if (/^sso-session\s+/.test(header)) {
      ssoSessions.set(header.replace(/^sso-session\s+/, '').trim(), section);
    } else if (header === 'default') {
      profiles.set('default', { ...section, name: 'default' });
    } else if (/^profile\s+/.test(header)) {
      const name = header.replace(/^profile\s+/, '').trim();
      profiles.set(name, { ...section, name });
    } else if (!/^(sso-session|services)\s/.test(header)) {
      bare.set(header, { ...section, name: header });
    }
  }
  for (const [name, section] of bare) if (!profiles.has(name)) profiles.set(name, section);
  return { path, profiles, ssoSessions };
}

/**
 * Cuts a line at a comment: `;` or `#` at the start of the line or after whitespace, as the AWS
 * SDK for JavaScript reads the file. One with no whitespace before it is part of the value, so
 * `sh -c "x; y"`, `https://host/#frag` and `…/start/#/` survive. (botocore takes no inline
 * comments at all: there `region = eu-west-1 ; note` is the region "eu-west-1 ; note".)
 */
function stripComment(line: string): string {
  const match = /(^|\s)[;#]/.exec(line);
  return match ? line.slice(0, match.index) : line;
}

/** Reads and parses the file; a missing file is an empty config, as for the AWS CLI. */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { path, profiles: new Map(), ssoSessions: new Map() };
    throw new VaultError('CONFIG_PARSE', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {
      hint: 'check the file exists and is readable, or set AWS_CONFIG_FILE',
      cause: error,
    });
  }
  return parseConfigFile(text, path);
}
