import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replaceProcess, resolveExecutable } from './replaceProcess.js';

const dir = mkdtempSync(join(tmpdir(), 'vault-replace-'));
const first = join(dir, 'first');
const second = join(dir, 'second');
mkdirSync(first);
mkdirSync(second);
writeFileSync(join(first, 'tool'), 'not executable\n');
writeFileSync(join(second, 'tool'), '#!/bin/sh\nexit 0\n');
chmodSync(join(second, 'tool'), 0o755);
mkdirSync(join(first, 'adir'));
writeFileSync(join(second, 'plain-script'), 'exit 0\n');
chmodSync(join(second, 'plain-script'), 0o755);
const PATH = `${first}:${second}`;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveExecutable: the file execvp(3) would run', () => {
  it('skips a PATH entry that is not executable and takes the next one', () => {
    expect(resolveExecutable('tool', PATH)).toBe(join(second, 'tool'));
  });

  it('skips directories, and finds nothing for a name on no PATH entry', () => {
    expect(resolveExecutable('adir', PATH)).toBeUndefined();
    expect(resolveExecutable('missing', PATH)).toBeUndefined();
  });

  it('takes a name with a slash as it is, without searching PATH', () => {
    expect(resolveExecutable(join(second, 'tool'), '')).toBe(join(second, 'tool'));
    expect(resolveExecutable(join(first, 'tool'), PATH)).toBeUndefined();
  });
});

describe('replaceProcess: declines what execve(2) would fail on (a failed execve aborts node)', () => {
  it('a command not found, or a script with no #! line, goes the child path', () => {
    expect(replaceProcess(['missing'], { PATH })).toBe(false);
    expect(replaceProcess(['plain-script'], { PATH })).toBe(false);
  });
});
