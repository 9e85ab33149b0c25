import { silentLogger } from '@vault/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Context } from './context.js';

describe("the command's own environment", () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  });

  it('the file passphrase is read once and kept out of the environment every child is built from', () => {
    const ctx = new Context({}, silentLogger, { env: { PATH: '/bin', AWS_VAULT_FILE_PASSPHRASE: 'the-file-passphrase', VAULT_PASSPHRASE_FD: '3' } });
    expect(ctx.filePassphrase).toBe('the-file-passphrase');
    expect(ctx.passphraseFd).toBe(3);
    expect(ctx.env).toEqual({ PATH: '/bin' });
  });

  it("given this process's environment, it removes the passphrase from it, so nothing that inherits it is handed it", () => {
    process.env.AWS_VAULT_FILE_PASSPHRASE = 'the-file-passphrase';
    const ctx = new Context({}, silentLogger);
    expect(ctx.filePassphrase).toBe('the-file-passphrase');
    expect(process.env).not.toHaveProperty('AWS_VAULT_FILE_PASSPHRASE');
    expect(ctx.env).not.toHaveProperty('AWS_VAULT_FILE_PASSPHRASE');
  });
});
