import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { isVaultError } from '@vault/core';
import { parseListen, relayRefusal } from './relayServer.js';

function request(method: string, url: string, headers: Record<string, string>): IncomingMessage {
  return { method, url, headers } as unknown as IncomingMessage;
}

describe('vault relay: what it listens on and what it forwards', () => {
  it('takes ADDRESS:PORT (IPv4, [IPv6]); on port 80 a Host without the port is the same address', () => {
    expect(parseListen('169.254.170.2:80')).toMatchObject({ host: '169.254.170.2', port: 80, text: '169.254.170.2:80', hosts: new Set(['169.254.170.2:80', '169.254.170.2']) });
    expect(parseListen('[fd00:ec2::23]:80')).toMatchObject({ host: 'fd00:ec2::23', text: '[fd00:ec2::23]:80', hosts: new Set(['[fd00:ec2::23]:80', '[fd00:ec2::23]']) });
    expect(parseListen('127.0.0.1:8080').hosts).toEqual(new Set(['127.0.0.1:8080']));
  });

  it('refuses a listen address that is not ADDRESS:PORT with one usage error', () => {
    for (const bad of ['localhost:80', '169.254.170.2', '169.254.170.2:0', '169.254.170.2:70000', ':80', '999.1.1.1:80']) {
      let error: unknown;
      try {
        parseListen(bad);
      } catch (e) {
        error = e;
      }
      expect(isVaultError(error) && error.code === 'USAGE' && error.message).toBe(`--listen "${bad}" is not ADDRESS:PORT`);
    }
  });

  it('forwards only GET of the container routes, with the Host of its address, no Origin, no body', () => {
    const listen = parseListen('169.254.170.2:80');
    const ok = { host: '169.254.170.2' };
    expect(relayRefusal(request('GET', '/creds/0123abcd', ok), listen)).toBeUndefined();
    expect(relayRefusal(request('GET', '/creds/0123abcd/role-arn/arn:aws:iam::123456789012:role/x', ok), listen)).toBeUndefined();
    const code = (method: string, url: string, headers: Record<string, string>) => relayRefusal(request(method, url, headers), listen)?.code;
    expect(code('GET', '/creds/0123abcd', { host: 'evil.example' })).toBe('HOST_NOT_ALLOWED');
    expect(code('GET', '/creds/0123abcd', {})).toBe('HOST_NOT_ALLOWED');
    expect(code('GET', '/creds/0123abcd', { ...ok, origin: 'http://evil.example' })).toBe('ORIGIN_NOT_ALLOWED');
    expect(code('PUT', '/creds/0123abcd', ok)).toBe('METHOD_NOT_ALLOWED');
    expect(code('GET', '/creds/0123abcd', { ...ok, 'content-length': '3' })).toBe('BODY_NOT_ALLOWED');
    expect(code('GET', '/creds/0123abcd', { ...ok, 'transfer-encoding': 'chunked' })).toBe('BODY_NOT_ALLOWED');
    for (const path of ['/', '/status', '/sessions', '/relay', '/latest/api/token', '/creds/XYZ', '/creds/0123abcd?x=1', '/creds/../status']) {
      expect(code('GET', path, ok)).toBe('NOT_FOUND');
    }
  });
});
