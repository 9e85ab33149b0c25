import { readFile } from 'node:fs/promises';
import type { ProfileConfig } from '../../config/profileConfig.js';
import type { AssumedRoleCredentials } from '../../credentials.js';
import { VaultError } from '../../errors.js';
import { runBoundedProcess } from '../../process/boundedProcess.js';
import { toStsError } from '../../sts/stsErrors.js';
import type { StsGateway, StsTarget } from '../../sts/stsGateway.js';
import { withoutVaultSecrets } from '../../vaultSecrets.js';

/** STS takes tokens of up to 20,000 characters (AssumeRoleWithWebIdentity's WebIdentityToken limit). */
const MAX_TOKEN = 20_000;
/** As long as a credential_process may take (the Go SDK's processcreds DefaultTimeout, 1 min). */
export const WEB_IDENTITY_PROCESS_TIMEOUT_MS = 60_000;

export interface WebIdentityOptions {
  /** Default WEB_IDENTITY_PROCESS_TIMEOUT_MS; tests pass less. */
  processTimeoutMs?: number;
}

/**
 * The profile's web identity token, read afresh on every call: EKS and GitHub Actions rotate the
 * file under a running process, and the SDKs re-read it at every refresh too. Missing, empty or
 * oversized is said in one line naming the profile and the setting, before any call to STS.
 */
export async function readWebIdentityToken(profile: ProfileConfig, env: NodeJS.ProcessEnv, options: WebIdentityOptions = {}): Promise<string> {
  const problem = (setting: string, what: string, hint: string, cause?: unknown) =>
    new VaultError('PROFILE_NO_CREDENTIALS', `profile ${profile.name}: ${setting} ${what}`, { hint, cause });
  let token: string;
  if (profile.webIdentityTokenFile !== undefined) {
    const path = profile.webIdentityTokenFile;
    try {
      token = await readFile(path, 'utf8');
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      const what = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${code ?? 'error'})`;
      throw problem('web_identity_token_file', `${path} ${what}`, 'check the path, or that whatever writes the token (CI, EKS) has written it', cause);
    }
    token = token.trim();
    if (token === '') throw problem('web_identity_token_file', `${path} is empty`, 'check that whatever writes the token (CI, EKS) has written it');
    if (token.length > MAX_TOKEN) throw problem('web_identity_token_file', `${path} holds more than ${MAX_TOKEN} characters`, 'point it at the token file itself');
    return token;
  }
  if (profile.webIdentityTokenProcess !== undefined) {
    const timeoutMs = options.processTimeoutMs ?? WEB_IDENTITY_PROCESS_TIMEOUT_MS;
    const hint = 'run the web_identity_token_process command by hand to check it prints the token';
    const output = await runBoundedProcess({
      command: profile.webIdentityTokenProcess,
      env: withoutVaultSecrets(env),
      stdin: 'ignore',
      ownProcessGroup: true,
      timeoutMs,
      maxOutput: MAX_TOKEN + 2,
      errors: {
        timedOut: () => problem('web_identity_token_process', `did not finish within ${timeoutMs / 1000} s`, hint),
        tooMuchOutput: () => problem('web_identity_token_process', `printed more than ${MAX_TOKEN} characters`, hint),
        notStarted: (cause) => problem('web_identity_token_process', 'could not be started', hint, cause),
        failed: (code, signal) => problem('web_identity_token_process', signal ? `was killed by ${signal}` : `exited with code ${code}`, hint),
      },
    });
    token = output.toString('utf8').trim();
    if (token === '') throw problem('web_identity_token_process', 'printed nothing', hint);
    return token;
  }
  throw new VaultError('INTERNAL', `profile ${profile.name} has no web identity token setting`);
}

export function usesWebIdentity(profile: ProfileConfig): boolean {
  return profile.webIdentityTokenFile !== undefined || profile.webIdentityTokenProcess !== undefined;
}

/** One AssumeRoleWithWebIdentity call with a freshly read token; errors name the role and profile. */
export async function fromWebIdentity(
  sts: StsGateway,
  target: StsTarget,
  profile: ProfileConfig,
  input: { roleSessionName: string; durationSeconds?: number },
  env: NodeJS.ProcessEnv,
  options: WebIdentityOptions = {},
): Promise<AssumedRoleCredentials> {
  const roleArn = profile.roleArn!;
  const webIdentityToken = await readWebIdentityToken(profile, env, options);
  if (!sts.assumeRoleWithWebIdentity) throw new VaultError('INTERNAL', 'this STS gateway cannot call AssumeRoleWithWebIdentity');
  try {
    return await sts.assumeRoleWithWebIdentity(target, { roleArn, webIdentityToken, ...input });
  } catch (error) {
    throw toStsError(error, { operation: 'AssumeRoleWithWebIdentity', profile: profile.name, roleArn, endpoint: target.endpoint });
  }
}
