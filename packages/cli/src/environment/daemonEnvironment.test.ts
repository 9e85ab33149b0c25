import { chainEnvironmentKey, RESOLUTION_VARIABLES } from '@vault/core';
import { describe, expect, it } from 'vitest';
import { DAEMON_VARIABLES, daemonEnvironment } from './daemonEnvironment.js';

/** A shell that has everything set: what resolves profiles, and secrets that must stay behind. */
function busyShell(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/bin:/bin',
    HOME: '/home/u',
    AWS_CONFIG_FILE: '/home/u/other-config',
    AWS_VAULT_FILE_DIR: '/home/u/keys',
    AWS_VAULT_BACKEND: 'file',
    DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus',
    AWS_SESSION_TOKEN_TTL: '2h',
    AWS_VAULT_FILE_PASSPHRASE: 'the-file-passphrase',
    AWS_ACCESS_KEY_ID: 'AKIAEXPORTEDFORADD01',
    AWS_SECRET_ACCESS_KEY: 'exported-for-vault-add-env',
    AWS_SESSION_TOKEN: 'a-session-token',
    GITHUB_TOKEN: 'ghp_someone_elses_secret',
    AWS_PROFILE: 'elsewhere',
  };
  for (const name of RESOLUTION_VARIABLES) env[name] = `value-of-${name}`;
  return env;
}

describe("the daemon's environment", () => {
  it('keeps what resolves a profile: the daemon fingerprints its environment the same as the command that starts it', () => {
    const shell = busyShell();
    expect(chainEnvironmentKey(daemonEnvironment(shell), '/home/u')).toBe(chainEnvironmentKey(shell, '/home/u'));
    expect(daemonEnvironment(shell)).toMatchObject({ PATH: shell.PATH, HOME: shell.HOME, AWS_VAULT_BACKEND: 'file', DBUS_SESSION_BUS_ADDRESS: shell.DBUS_SESSION_BUS_ADDRESS, AWS_SESSION_TOKEN_TTL: shell.AWS_SESSION_TOKEN_TTL });
  });

  it('leaves behind the file passphrase, exported keys and tokens, and every variable it does not list', () => {
    const env = daemonEnvironment(busyShell());
    for (const name of ['AWS_VAULT_FILE_PASSPHRASE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'GITHUB_TOKEN', 'AWS_PROFILE']) {
      expect(env, name).not.toHaveProperty(name);
    }
    expect(Object.keys(env).every((name) => DAEMON_VARIABLES.includes(name))).toBe(true);
  });
});
