/** Items a daemon remembers at most (each a few hundred bytes); the oldest is forgotten first. */
const REMEMBERED_MAX = 256;

/**
 * What was decrypted, keyed by the file name and the exact ciphertext read, for a long-running
 * process (the daemon): each item's KDF is then paid once per login instead of once per read, and
 * any write — by this process or another — changes the ciphertext, so a stale value is never
 * returned.
 */
export class DecryptedCache {
  private readonly values = new Map<string, string>();

  get(name: string, token: string): string | undefined {
    return this.values.get(memoKey(name, token));
  }

  set(name: string, token: string, value: string): void {
    if (this.values.size >= REMEMBERED_MAX) this.values.delete(this.values.keys().next().value!);
    this.values.set(memoKey(name, token), value);
  }
}

function memoKey(name: string, token: string): string {
  return `${name}\n${token}`;
}
