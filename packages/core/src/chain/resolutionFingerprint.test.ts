import { describe, expect, it } from 'vitest';
import { chainEnvironmentKey } from './resolutionFingerprint.js';

describe('chainEnvironmentKey', () => {
  const base = { AWS_CONFIG_FILE: '/home/u/.aws/config' };

  it.each(['AWS_SESSION_TOKEN_TTL', 'AWS_CHAINED_SESSION_TOKEN_TTL', 'AWS_ASSUME_ROLE_TTL'])(
    'a command with another %s does not match the daemon: it would get the daemon’s durations',
    (name) => {
      expect(chainEnvironmentKey({ ...base, [name]: '2h' }, '/home/u')).not.toBe(chainEnvironmentKey(base, '/home/u'));
      expect(chainEnvironmentKey({ ...base, [name]: '2h' }, '/home/u')).not.toBe(chainEnvironmentKey({ ...base, [name]: '3h' }, '/home/u'));
    },
  );

  it('variables that do not shape a resolution leave it alone', () => {
    expect(chainEnvironmentKey({ ...base, TERM: 'xterm' }, '/home/u')).toBe(chainEnvironmentKey(base, '/home/u'));
  });
});
