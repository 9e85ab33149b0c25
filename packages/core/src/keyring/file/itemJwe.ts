import { randomBytes } from 'node:crypto';
import { decodeAwsVaultItem, encodeAwsVaultItem, NotAnAwsVaultItem } from '../awsVaultItem.js';
import { damagedRatherThanWrongPassphrase } from './passphraseForensics.js';

/**
 * aws-vault's item format (github.com/99designs/keyring `file.go`), so a directory written by
 * either tool is read by the other:
 *
 * - file content = a JWE in compact serialization (jose2go `jose.Encrypt`): alg
 *   `PBES2-HS256+A128KW`, enc `A256GCM`, the protected header carries `p2c`/`p2s` and a
 *   free-form `created` timestamp (Go's `time.Now().String()`). aws-vault writes p2c = 8192
 *   (jose2go's default) with a 12-byte salt.
 * - plaintext = Go's `json.Marshal(keyring.Item)`, read and written by `../awsVaultItem.ts`
 *   (shared with the pass backend).
 */

/**
 * jose is imported on first use: it is ~45 modules, and a command on the keychain backend (or a
 * file-backend command answered by the daemon) never encrypts or decrypts anything.
 */
let josePromise: Promise<typeof import('jose')> | undefined;
const jose = () => (josePromise ??= import('jose'));

/**
 * PBES2 iteration count (PBKDF2-HMAC-SHA256) for the items this backend writes.
 *
 * Cost: every item read or written runs one derivation (each file has its own salt). Measured on
 * the 2-core AMD EPYC build machine with Node 20: 8,192 → 2.4 ms, 100,000 → 30 ms,
 * 310,000 → 95 ms, 600,000 → 170–190 ms, 1,300,000 → 360 ms. A `vault exec` with MFA reads two
 * items (the long-term key and the cached credentials), so 600,000 costs about 0.4 s per command;
 * `keys()`/`remove()` derive nothing.
 * Guessing resistance: an offline attacker with the files runs PBKDF2 once per guess per file.
 * A current GPU does on the order of 10^10 HMAC-SHA256 iterations/s, i.e. ~10^6 guesses/s
 * against aws-vault's 8,192 but ~1.5·10^4 guesses/s against 600,000 — 73× more work, which is
 * what OWASP's 2023 guidance asks of PBKDF2-HMAC-SHA256.
 * Compatibility: jose2go ≥ 1.6 (what newer aws-vault builds link) refuses p2c above 1,300,000 for
 * this alg, so we stay well under it; aws-vault's 8,192-count files stay readable (the read limit
 * below is independent of this value).
 */
export const FILE_KEYRING_PBES2_COUNT = 600_000;

/**
 * The highest p2c accepted when reading: jose2go's own cap for PBES2-HS256+A128KW. A bound is
 * needed because p2c comes from the file: a planted file with p2c = 2^31 would otherwise stall
 * every read for hours.
 */
export const FILE_KEYRING_MAX_PBES2_COUNT = 1_300_000;

const ALG = 'PBES2-HS256+A128KW';
const ENC = 'A256GCM';
/** The algorithms an item may be read with (jose2go writes any PBES2 variant it is asked for). */
const READ_ALGS = ['PBES2-HS256+A128KW', 'PBES2-HS384+A192KW', 'PBES2-HS512+A256KW'];

const encoder = new TextEncoder();
export type DecryptFailure = 'bad-passphrase' | 'corrupt';
export type Decrypted = { ok: true; plaintext: Uint8Array } | { ok: false; failure: DecryptFailure; cause?: unknown };

/** Go's `time.Now().String()` shape, in UTC: `2006-01-02 15:04:05.123 +0000 UTC` (jose2go ignores it). */
function goTimeString(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const ms = date.getUTCMilliseconds();
  const fraction = ms === 0 ? '' : '.' + p(ms, 3).replace(/0+$/, '');
  return `${date.getUTCFullYear()}-${p(date.getUTCMonth() + 1)}-${p(date.getUTCDate())} ${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())}${fraction} +0000 UTC`;
}

/** The JWE of one item, as aws-vault writes it (with our PBES2 count and a 16-byte salt). */
export async function encryptItem(
  item: { key: string; value: string; label?: string | undefined },
  passphrase: Uint8Array,
  options: { pbes2Count: number; now: Date },
): Promise<string> {
  const { CompactEncrypt } = await jose();
  return new CompactEncrypt(encoder.encode(encodeAwsVaultItem(item.key, item.value, item.label)))
    .setProtectedHeader({ alg: ALG, enc: ENC, created: goTimeString(options.now) })
    .setKeyManagementParameters({ p2c: options.pbes2Count, p2s: randomBytes(16) })
    .encrypt(passphrase);
}

/** The plaintext of an item's JWE, or why not: a wrong passphrase or a damaged file. */
export async function decryptItem(token: string, passphrase: Uint8Array, maxPbes2Count: number): Promise<Decrypted> {
  const { compactDecrypt, errors: joseErrors } = await jose();
  try {
    const { plaintext } = await compactDecrypt(token, passphrase, { keyManagementAlgorithms: READ_ALGS, maxPBES2Count: maxPbes2Count });
    return { ok: true, plaintext };
  } catch (cause) {
    if (!(cause instanceof joseErrors.JWEDecryptionFailed)) return { ok: false, failure: 'corrupt', cause };
    // jose does not say whether the key unwrap or the content decryption failed: ask the forensics.
    return { ok: false, failure: (await damagedRatherThanWrongPassphrase(token, passphrase, READ_ALGS)) ? 'corrupt' : 'bad-passphrase', cause };
  }
}

/**
 * The value an item's plaintext holds: `Data`'s bytes as UTF-8 ('' when there are none), or
 * `{ ok: false }` when the plaintext is no item.
 */
export function itemValue(plaintext: Uint8Array): { ok: true; value: string } | { ok: false; cause?: unknown } {
  try {
    return { ok: true, value: decodeAwsVaultItem(plaintext) };
  } catch (error) {
    return { ok: false, cause: error instanceof NotAnAwsVaultItem ? error.cause : error };
  }
}

/** True when a file's content starts with a JOSE header (an item, perhaps damaged), not a README or `.DS_Store`. */
export function hasJoseHeader(content: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(content.trim().split('.', 1)[0]!, 'base64url').toString('utf8')) as unknown;
    return typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}
