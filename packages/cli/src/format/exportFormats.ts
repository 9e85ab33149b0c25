import { formatExpiration, type Credentials } from '@vault/core';
import { credentialVariables } from '../environment/childEnvironment.js';

export type ExportFormat = 'env' | 'export-env' | 'json' | 'ini';

/** POSIX shell single quoting: safe for any value in `eval "$(vault export …)"`. */
export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The `credential_process` reply: Version 1, Expiration in `YYYY-MM-DDTHH:MM:SSZ`. */
export function credentialProcessJson(credentials: Credentials): string {
  const out: Record<string, string | number> = {
    Version: 1,
    AccessKeyId: credentials.accessKeyId,
    SecretAccessKey: credentials.secretAccessKey,
  };
  if (credentials.sessionToken) out.SessionToken = credentials.sessionToken;
  if (credentials.expiration) out.Expiration = formatExpiration(credentials.expiration);
  return JSON.stringify(out);
}

export function formatCredentials(format: ExportFormat, credentials: Credentials, profile: string, region: string | undefined): string {
  switch (format) {
    case 'json':
      return `${credentialProcessJson(credentials)}\n`;
    case 'ini': {
      const lines = [`[${profile}]`, `aws_access_key_id=${credentials.accessKeyId}`, `aws_secret_access_key=${credentials.secretAccessKey}`];
      if (credentials.sessionToken) lines.push(`aws_session_token=${credentials.sessionToken}`);
      if (region) lines.push(`region=${region}`);
      return `${lines.join('\n')}\n`;
    }
    case 'env':
    case 'export-env': {
      const prefix = format === 'export-env' ? 'export ' : '';
      const vars = credentialVariables(credentials, profile, region).filter(([name]) => name !== 'AWS_VAULT' && name !== 'AWS_SECURITY_TOKEN');
      return vars.map(([name, value]) => `${prefix}${name}=${format === 'export-env' ? shellQuote(value) : value}\n`).join('');
    }
  }
}
