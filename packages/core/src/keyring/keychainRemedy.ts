/** The way out every keychain failure names: the file backend needs no keychain at all. */
export const FILE_REMEDY = 'or use `--backend file` (AWS_VAULT_BACKEND=file)';

/** A native or D-Bus error message on one line, bounded (it goes into a `vault:` line). */
export function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
