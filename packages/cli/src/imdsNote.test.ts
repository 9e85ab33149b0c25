import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ANY_LOCAL_PROCESS_NOTE, noteIfAnyLocalProcessCanRead } from './imdsNote.js';

function stderrOf(canTell: boolean): string {
  const stream = new PassThrough();
  noteIfAnyLocalProcessCanRead(stream, () => canTell);
  return stream.read()?.toString('utf8') ?? '';
}

describe('the IMDS note where the OS cannot tell whose a connection is', () => {
  it('is one `vault: note:` line saying any local process can read these credentials', () => {
    const printed = stderrOf(false);
    expect(printed).toBe(ANY_LOCAL_PROCESS_NOTE);
    expect(printed.split('\n').filter(Boolean)).toHaveLength(1);
    expect(printed).toMatch(/^vault: note: .*any local process can read these credentials/);
  });

  it('is not printed where the daemon refuses other users (Linux)', () => {
    expect(stderrOf(true)).toBe('');
  });
});
