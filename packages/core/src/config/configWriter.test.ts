import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VaultError } from '../errors.js';
import { addProfileSection, withProfileSection } from './configWriter.js';

describe('withProfileSection: appends, keeping every byte before it', () => {
  it('adds a blank line and the header after a file that ends with a newline', () => {
    const text = '# mine\n[profile a]\nregion = eu-west-1 ; keep me\n';
    expect(withProfileSection(text, 'b')).toBe(`${text}\n[profile b]\n`);
  });

  it('ends an unterminated last line first, and adds no second blank line', () => {
    expect(withProfileSection('[profile a]\nregion = x', 'b')).toBe('[profile a]\nregion = x\n\n[profile b]\n');
    expect(withProfileSection('[profile a]\n\n', 'b')).toBe('[profile a]\n\n[profile b]\n');
  });

  it('uses the file’s CRLF line endings, [default] for the default profile, and nothing before it in an empty file', () => {
    expect(withProfileSection('[profile a]\r\nregion = x\r\n', 'b')).toBe('[profile a]\r\nregion = x\r\n\r\n[profile b]\r\n');
    expect(withProfileSection('', 'default')).toBe('[default]\n');
  });
});

describe('addProfileSection', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vault-config-writer-'));
  });
  afterEach(() => {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves a file that has the profile (as [profile X] or [X]) untouched', async () => {
    const path = join(dir, 'config');
    writeFileSync(path, '[profile a]\n[b]\n');
    expect(await addProfileSection(path, 'a')).toEqual({ added: false, path });
    expect(await addProfileSection(path, 'b')).toEqual({ added: false, path });
    expect(readFileSync(path, 'utf8')).toBe('[profile a]\n[b]\n');
  });

  it('creates a missing file 0600 in a 0700 directory, and keeps the mode of an existing one', async () => {
    const path = join(dir, 'aws', 'config');
    await addProfileSection(path, 'a');
    expect(readFileSync(path, 'utf8')).toBe('[profile a]\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'aws')).mode & 0o777).toBe(0o700);
    chmodSync(path, 0o640);
    await addProfileSection(path, 'b');
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });

  it('writes through a symlinked config to its target, keeping the link', async () => {
    const target = join(dir, 'dotfiles-config');
    writeFileSync(target, '[profile a]\n');
    const link = join(dir, 'config');
    symlinkSync(target, link);
    expect((await addProfileSection(link, 'b')).path).toBe(target);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('[profile a]\n\n[profile b]\n');
  });

  it('fails with one CONFIG_WRITE line, leaving nothing behind, when the config cannot be read', async () => {
    const path = join(dir, 'config');
    mkdirSync(path); // a directory where the file should be
    const error = await addProfileSection(path, 'b').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VaultError);
    expect((error as VaultError).code).toBe('CONFIG_WRITE');
    expect((error as VaultError).toLine()).toBe(`could not add the profile to ${path} (EISDIR); the file is as it was; check you can write to it and its directory, or pass --no-add-config`);
    expect(readdirSync(dir)).toEqual(['config']);
    expect(readdirSync(path)).toEqual([]);
  });

  it('refuses a profile name that cannot be a section header', async () => {
    mkdirSync(join(dir, 'x'));
    await expect(addProfileSection(join(dir, 'x', 'config'), 'a b')).rejects.toMatchObject({ code: 'USAGE' });
  });
});
