import type { promises as nodeFs } from 'node:fs';

/** The subset of `node:fs/promises` the backend uses; tests replace parts of it to inject failures. */
export interface FileKeyringFs {
  open: typeof nodeFs.open;
  rename: typeof nodeFs.rename;
  unlink: typeof nodeFs.unlink;
  mkdir: typeof nodeFs.mkdir;
  chmod: typeof nodeFs.chmod;
  stat: typeof nodeFs.stat;
  readdir: typeof nodeFs.readdir;
  readFile: typeof nodeFs.readFile;
}

export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'a directory is in the way',
  ENOTDIR: 'a path component is not a directory',
  ENOTEMPTY: 'a directory is in the way',
  EEXIST: 'already exists',
  EIO: 'I/O error',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
};

/** `ENOSPC (no space left on device)`: the fs error without its path-laden message. */
export function describeFsError(error: unknown): string {
  const code = errnoOf(error);
  if (code) return ERRNO_TEXT[code] ? `${code} (${ERRNO_TEXT[code]})` : code;
  return error instanceof Error ? error.message.split('\n')[0]! : String(error);
}
