import { spawn } from 'node:child_process';
import type { Credentials } from '../credentials.js';
import { VaultError } from '../errors.js';
import { withoutVaultSecrets } from '../vaultSecrets.js';

/** A credential_process that prints more than this is broken; stop instead of buffering it. */
const MAX_OUTPUT = 64 * 1024;

/**
 * Runs a profile's `credential_process` and reads its `Version: 1` JSON, as the AWS CLI does. It
 * gets `env` — the chain's environment, never this process's by default — minus vault's secrets.
 */
export function fromCredentialProcess(command: string, profile: string, env: NodeJS.ProcessEnv): Promise<Credentials> {
  return new Promise((resolve, reject) => {
    const fail = (message: string, cause?: unknown) =>
      reject(new VaultError('PROFILE_NO_CREDENTIALS', `credential_process of profile ${profile} ${message}`, {
        hint: 'run the credential_process command by hand to check it prints Version 1 JSON',
        cause,
      }));
    const child = spawn(command, { shell: true, stdio: ['ignore', 'pipe', 'inherit'], env: withoutVaultSecrets(env) });
    const chunks: Buffer[] = [];
    let size = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_OUTPUT) child.kill();
      else chunks.push(chunk);
    });
    child.on('error', (cause) => fail('could not be started', cause));
    child.on('close', (code) => {
      if (size > MAX_OUTPUT) return fail(`printed more than ${MAX_OUTPUT} bytes`);
      if (code !== 0) return fail(`exited with code ${code}`);
      let out: Record<string, unknown>;
      try {
        out = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch (cause) {
        return fail('did not print JSON', cause);
      }
      if (out.Version !== 1 || typeof out.AccessKeyId !== 'string' || typeof out.SecretAccessKey !== 'string') {
        return fail('printed JSON without Version 1, AccessKeyId and SecretAccessKey');
      }
      resolve({
        accessKeyId: out.AccessKeyId,
        secretAccessKey: out.SecretAccessKey,
        sessionToken: typeof out.SessionToken === 'string' ? out.SessionToken : undefined,
        expiration: typeof out.Expiration === 'string' ? new Date(out.Expiration) : undefined,
      });
    });
  });
}
