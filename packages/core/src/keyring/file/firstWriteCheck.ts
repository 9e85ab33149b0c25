import { join } from 'node:path';
import type { FileKeyringFs } from './fileSystem.js';
import { decryptItem } from './itemJwe.js';

/**
 * The check before a keyring's first write: if the directory holds items, the passphrase must open
 * at least one of the (up to three) most recently written ones. Otherwise a typo at the prompt
 * would store items nothing else opens. Returns `opened` when one opened, the file name of the
 * newest item that refused the passphrase, or `nothing-refused` (no items, or only damaged or
 * unreadable ones: nothing says the passphrase is wrong).
 */
export async function passphraseAgainstNewestItems(
  fs: FileKeyringFs,
  dir: string,
  fileNames: readonly string[],
  passphrase: Uint8Array,
  maxPbes2Count: number,
): Promise<'opened' | 'nothing-refused' | { refusedBy: string }> {
  const dated: { name: string; mtime: number }[] = [];
  for (const name of fileNames) {
    try {
      dated.push({ name, mtime: (await fs.stat(join(dir, name))).mtimeMs });
    } catch {
      // gone meanwhile
    }
  }
  dated.sort((a, b) => b.mtime - a.mtime);
  let refusedBy: string | undefined;
  for (const { name } of dated.slice(0, 3)) {
    let token: string;
    try {
      token = await fs.readFile(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    const result = await decryptItem(token.trim(), passphrase, maxPbes2Count);
    if (result.ok) return 'opened';
    if (result.failure === 'bad-passphrase') refusedBy ??= name;
  }
  return refusedBy === undefined ? 'nothing-refused' : { refusedBy };
}
