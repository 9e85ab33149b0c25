import type { Clock } from '../clock.js';
import type { Credentials } from '../credentials.js';
import { VaultError } from '../errors.js';
import type { CredentialKeyring } from '../keyring/credentialKeyring.js';
import type { CredentialCache } from '../keyring/credentialCache.js';
import { silentLogger, type Logger } from '../logger.js';
import type { StsGateway, StsTarget } from '../sts/stsGateway.js';
import { awsErrorCode, describeAwsError, isTransient } from './awsFailure.js';
import type { AccessKey, IamGateway, IamTarget } from './iamGateway.js';
import { iamUserName } from './iamUserName.js';
import { KEY_ACCEPT_MAX_WAIT_MS, retryWithBackoff } from './waitForKey.js';

/** DeleteAccessKey is retried on throttling, 5xx and the network for this long (aws-vault: 20 s). */
const DELETE_RETRY_MS = 20_000;

export interface RotateDeps {
  iam: IamGateway;
  sts: StsGateway;
  credentials: CredentialKeyring;
  cache: CredentialCache;
  clock: Clock;
  sleep: (ms: number) => Promise<void>;
  /** A progress line for the person (stderr). */
  say: (line: string) => void;
  logger?: Logger;
}

export interface RotateRequest {
  /** The profile named on the command line (for the lines and hints). */
  profile: string;
  /** The profile whose stored key is replaced. */
  keyOwner: string;
  oldKey: Credentials;
  /** What signs the IAM calls: the old key itself (-n), or an MFA session made from it. */
  caller: Credentials;
  iamTarget: IamTarget;
  stsTarget: StsTarget;
  /** Profiles whose cached credentials came from the old key (dropped once the new key works). */
  profilesUsingKey: ReadonlySet<string>;
  acceptWaitMs?: number;
}

export interface RotateResult {
  userName: string;
  newAccessKeyId: string;
  oldAccessKeyId: string;
}

/** `AKIA…WXYZ`: enough to tell keys apart in a progress line (aws-vault shows the last four too). */
export function shortKeyId(id: string): string {
  return `****${id.slice(-4)}`;
}

/**
 * Replaces a stored long-term key: CreateAccessKey, store the new key, wait until STS accepts it,
 * drop the credentials cached from the old one, DeleteAccessKey the old one. Whatever step
 * fails, exactly one working key is left stored, and the error line says what happened and what
 * to run. The new key is stored before anything else is tried: IAM shows its secret only once.
 */
export async function rotateStoredKey(request: RotateRequest, deps: RotateDeps): Promise<RotateResult> {
  const log = deps.logger ?? silentLogger;
  const { profile, keyOwner, oldKey, caller } = request;
  const again = `run \`vault rotate ${profile}\` again`;
  const fail = (message: string, hint: string, cause?: unknown) => new VaultError('ROTATE_FAILED', message, { hint, cause });

  let userName: string;
  try {
    userName = await iamUserName(deps.iam, caller, request.iamTarget);
  } catch (error) {
    throw fail(`could not find the IAM user of the key stored for profile ${keyOwner} (${describeAwsError(error)}); nothing was changed`, iamHint(error, 'iam:GetUser', again, keyOwner), error);
  }
  log.debug({ profile: keyOwner, userName }, 'rotating the stored key');
  deps.say(`Rotating the key stored for profile ${keyOwner} (IAM user ${userName}, key ${shortKeyId(oldKey.accessKeyId)})`);

  let created: AccessKey;
  try {
    created = await deps.iam.createAccessKey(caller, request.iamTarget, userName);
  } catch (error) {
    const hint =
      awsErrorCode(error) === 'LimitExceeded'
        ? `user ${userName} already has two access keys: delete the one not stored here (\`aws iam list-access-keys --user-name ${userName}\`, then \`aws iam delete-access-key --user-name ${userName} --access-key-id ID\`) and ${again}`
        : iamHint(error, 'iam:CreateAccessKey', again, keyOwner);
    throw fail(`CreateAccessKey for IAM user ${userName} failed (${describeAwsError(error)}); nothing was changed, the stored key still works`, hint, error);
  }
  const newKey: Credentials = { accessKeyId: created.accessKeyId, secretAccessKey: created.secretAccessKey };
  deps.say(`Created new access key ${shortKeyId(newKey.accessKeyId)}`);

  // Deletes the new key again (the old one stays stored): says how that went, for the error line.
  const undoCreate = async (): Promise<{ undone: true } | { undone: false; why: string }> => {
    try {
      await retryWithBackoff(() => deps.iam.deleteAccessKey(caller, request.iamTarget, userName, newKey.accessKeyId), { clock: deps.clock, sleep: deps.sleep, maxWaitMs: DELETE_RETRY_MS }, isTransient);
      return { undone: true };
    } catch (error) {
      return { undone: false, why: describeAwsError(error) };
    }
  };
  const deleteNewCommand = `\`aws iam delete-access-key --user-name ${userName} --access-key-id ${newKey.accessKeyId}\``;

  try {
    await deps.credentials.set(keyOwner, newKey);
  } catch (error) {
    const reason = error instanceof VaultError ? error.message : String(error);
    const undo = await undoCreate();
    if (undo.undone) {
      throw fail(`could not store the new key for profile ${keyOwner} (${reason}); deleted it at AWS again, the stored key is unchanged and still works`, `fix the keyring and ${again}`, error);
    }
    throw fail(
      `could not store the new key for profile ${keyOwner} (${reason}), nor delete it at AWS (${undo.why}); the stored key is unchanged and still works`,
      `delete the new key with ${deleteNewCommand}, fix the keyring, and ${again}`,
      error,
    );
  }

  try {
    await retryWithBackoff(() => deps.sts.getCallerIdentity(newKey, request.stsTarget), { clock: deps.clock, sleep: deps.sleep, maxWaitMs: request.acceptWaitMs ?? KEY_ACCEPT_MAX_WAIT_MS });
  } catch (error) {
    const waited = Math.round((request.acceptWaitMs ?? KEY_ACCEPT_MAX_WAIT_MS) / 1000);
    const what = `STS did not accept the new key ${shortKeyId(newKey.accessKeyId)} within ${waited} s (${describeAwsError(error)})`;
    try {
      await deps.credentials.set(keyOwner, oldKey);
    } catch (restoreError) {
      const reason = restoreError instanceof VaultError ? restoreError.message : String(restoreError);
      // The new key is stored and exists at AWS; the old one was not deleted either.
      throw fail(
        `${what}, and the old key could not be put back (${reason}); the new key stays stored and the old key was not deleted`,
        `in a minute check it with \`vault exec ${profile} -- aws sts get-caller-identity\`, then ${again} to remove the old key`,
        error,
      );
    }
    const undo = await undoCreate();
    if (undo.undone) throw fail(`${what}; put the old key back in the keyring (it still works) and deleted the new one`, `${again} in a minute`, error);
    throw fail(`${what}; put the old key back in the keyring (it still works), but could not delete the new one (${undo.why})`, `delete the new key with ${deleteNewCommand}, then ${again}`, error);
  }

  try {
    const dropped = await deps.cache.clear(request.profilesUsingKey);
    log.debug({ profile: keyOwner, dropped }, 'dropped the credentials cached from the old key');
  } catch (error) {
    // Not fatal: the new key is stored and works; what was cached from the old one lingers until it expires.
    const reason = error instanceof VaultError ? error.message : String(error);
    deps.say(`vault: note: could not drop the credentials cached from the old key (${reason}); run \`vault clear ${keyOwner}\``);
  }

  try {
    await retryWithBackoff(
      async () => {
        try {
          await deps.iam.deleteAccessKey(caller, request.iamTarget, userName, oldKey.accessKeyId);
        } catch (error) {
          if (awsErrorCode(error) !== 'NoSuchEntity') throw error; // already gone: what we wanted
        }
      },
      { clock: deps.clock, sleep: deps.sleep, maxWaitMs: DELETE_RETRY_MS },
      isTransient,
    );
  } catch (error) {
    throw fail(
      `the new key ${shortKeyId(newKey.accessKeyId)} is stored for profile ${keyOwner} and works, but deleting the old key ${oldKey.accessKeyId} failed (${describeAwsError(error)})`,
      `delete it with \`aws iam delete-access-key --user-name ${userName} --access-key-id ${oldKey.accessKeyId}\``,
      error,
    );
  }
  deps.say(`Deleted old access key ${shortKeyId(oldKey.accessKeyId)}`);
  return { userName, newAccessKeyId: newKey.accessKeyId, oldAccessKeyId: oldKey.accessKeyId };
}

function iamHint(error: unknown, action: string, again: string, keyOwner: string): string {
  const code = awsErrorCode(error);
  if (code === 'AccessDenied' || code === 'AccessDeniedException') {
    return `check that the user's IAM policy allows ${action} (if it demands MFA, set mfa_serial in the profile and do not pass -n)`;
  }
  if (code === 'InvalidClientTokenId' || code === 'SignatureDoesNotMatch') return `the stored key was rejected; store a valid one with \`vault add ${keyOwner}\``;
  return `try again shortly: ${again}`;
}
