import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { TEMP_PREFIX } from './fileNames.js';
import type { FileKeyringFs } from './fileSystem.js';

/**
 * Replaces `dir/name` with `contents` so that a reader sees the old item or the new one, never
 * half of either: a temp file in the same directory (0600, exclusive create), fsync, rename over
 * the item, then fsync the directory. On failure the temp file is removed and the fs error
 * rethrown (the previous value, if any, is unchanged).
 */
export async function writeAtomically(fs: FileKeyringFs, dir: string, name: string, contents: string, platform: NodeJS.Platform): Promise<void> {
  const tempPath = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  let created = false;
  try {
    const handle = await fs.open(tempPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    created = true;
    try {
      await handle.writeFile(contents, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tempPath, join(dir, name));
    created = false;
  } catch (cause) {
    if (created) await fs.unlink(tempPath).catch(() => undefined);
    throw cause;
  }
  await syncDirectory(fs, dir, platform);
}

/**
 * Makes a rename or unlink durable. Best effort: the rename has already happened, so a failure
 * here must not be reported as a failed write (and Windows cannot open directories at all).
 */
export async function syncDirectory(fs: FileKeyringFs, dir: string, platform: NodeJS.Platform): Promise<void> {
  if (platform === 'win32') return;
  let handle: Awaited<ReturnType<FileKeyringFs['open']>> | undefined;
  try {
    handle = await fs.open(dir, fsConstants.O_RDONLY);
    await handle.sync();
  } catch {
    // file systems without directory fsync (EINVAL), or a directory we may not open
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
