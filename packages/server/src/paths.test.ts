import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkStateLocation, stateLocation } from './paths.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length > 0) rmSync(dirs.pop()!, { recursive: true, force: true });
});
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vault-paths-'));
  dirs.push(dir);
  return dir;
}

describe('stateLocation', () => {
  it('puts the state in $XDG_RUNTIME_DIR/vault, remembering ~/.vault/daemon as the place it moved from', () => {
    expect(stateLocation({ HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000' })).toEqual({
      dir: '/run/user/1000/vault',
      source: 'XDG_RUNTIME_DIR',
      given: '/run/user/1000',
      legacy: '/home/u/.vault/daemon',
    });
  });

  it('falls back to ~/.vault/daemon without XDG_RUNTIME_DIR (macOS, no login session)', () => {
    expect(stateLocation({ HOME: '/home/u' })).toEqual({ dir: '/home/u/.vault/daemon', source: 'HOME' });
    expect(stateLocation({ HOME: '/home/u', XDG_RUNTIME_DIR: '' })).toEqual({ dir: '/home/u/.vault/daemon', source: 'HOME' });
  });

  it('lets VAULT_STATE_DIR override both, with no old place to look in', () => {
    expect(stateLocation({ HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000', VAULT_STATE_DIR: '/srv/v' })).toEqual({
      dir: '/srv/v',
      source: 'VAULT_STATE_DIR',
      given: '/srv/v',
    });
  });
});

describe('checkStateLocation', () => {
  const uid = process.getuid!();
  const check = (env: NodeJS.ProcessEnv, asUid = uid) => () => checkStateLocation(stateLocation({ HOME: '/home/u', ...env }), asUid);

  it('accepts a 0700 runtime directory of the user\'s (its vault/ need not exist yet)', () => {
    const run = temp();
    chmodSync(run, 0o700);
    expect(check({ XDG_RUNTIME_DIR: run })).not.toThrow();
    expect(check({ VAULT_STATE_DIR: run })).not.toThrow();
  });

  it('refuses a missing directory, a file, one writable by others and one of another uid, naming the variable', () => {
    const root = temp();
    const file = join(root, 'file');
    writeFileSync(file, '');
    const open = join(root, 'open');
    mkdirSync(open);
    chmodSync(open, 0o1777);
    const group = join(root, 'group');
    mkdirSync(group);
    chmodSync(group, 0o770);
    for (const name of ['XDG_RUNTIME_DIR', 'VAULT_STATE_DIR'] as const) {
      expect(check({ [name]: join(root, 'missing') })).toThrow(`${name} ${join(root, 'missing')} does not exist`);
      expect(check({ [name]: file })).toThrow(`${name} ${file} is not a directory`);
      expect(check({ [name]: join(file, 'below') })).toThrow(`${name} ${join(file, 'below')} is not a directory`);
      expect(check({ [name]: open })).toThrow(`${name} ${open} is writable by other users (mode 1777)`);
      expect(check({ [name]: group })).toThrow(`${name} ${group} is writable by other users (mode 770)`);
      expect(check({ [name]: root }, uid + 1)).toThrow(`${name} ${root} belongs to another user (uid ${uid})`);
    }
  });

  it('refuses a relative XDG_RUNTIME_DIR (the XDG spec calls it invalid)', () => {
    expect(check({ XDG_RUNTIME_DIR: 'run/user' })).toThrow('XDG_RUNTIME_DIR "run/user" is not an absolute path');
  });

  it('never checks the HOME fallback, which may not exist yet', () => {
    expect(check({})).not.toThrow();
  });
});
