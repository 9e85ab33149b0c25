import { sep } from 'node:path';

// How the file backend names its items, exactly as aws-vault's file keyring does, so the two read
// each other's directory (~/.awsvault/keys).

/**
 * Writes go to a temporary file of this prefix first, then are renamed. `%t` is never produced by
 * the escaping, so no key maps to one.
 */
export const TEMP_PREFIX = '.%tmp-';
/** Longest file name the common file systems take (ext4, APFS: 255 bytes). */
const NAME_MAX_BYTES = 255;

const encoder = new TextEncoder();

/** aws-vault's file name for a key: `percent.Encode(key, "/")` — only `/` and `%` are escaped. */
export function fileKeyringFileName(key: string): string {
  let out = '';
  for (const ch of key) {
    if (ch === '/' || ch === '%') {
      for (const byte of encoder.encode(ch)) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    } else {
      out += ch;
    }
  }
  return out;
}

/** The inverse (`percent.Decode`): every `%XX` hex pair becomes that byte. */
export function fileKeyringKeyName(fileName: string): string {
  const bytes = Buffer.from(fileName, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte === 0x25 && i + 2 < bytes.length && isHex(bytes[i + 1]!) && isHex(bytes[i + 2]!)) {
      out.push(parseInt(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!), 16));
      i += 2;
    } else {
      out.push(byte);
    }
  }
  return Buffer.from(out).toString('utf8');
}

function isHex(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
}

/** A file name is an item's only if the escaping produces exactly it (so temp files and strays are not). */
export function keyForFileName(fileName: string): string | undefined {
  if (fileName.startsWith(TEMP_PREFIX)) return undefined;
  const key = fileKeyringKeyName(fileName);
  return fileKeyringFileName(key) === fileName ? key : undefined;
}

/** The file name of a key, or undefined when the file system could not hold it (empty, a path, too long). */
export function usableFileName(key: string): string | undefined {
  const name = fileKeyringFileName(key);
  if (name === '' || name === '.' || name === '..' || name.includes('\0') || name.includes(sep)) return undefined;
  if (Buffer.byteLength(name, 'utf8') > NAME_MAX_BYTES) return undefined;
  return name;
}
