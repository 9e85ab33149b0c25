import type { Keyring } from './keyring.js';

/** In-process keyring for tests and for the daemon's hot cache. */
export class MemoryKeyring implements Keyring {
  readonly backend = 'memory';
  private readonly items = new Map<string, string>();

  async get(key: string): Promise<string | undefined> {
    return this.items.get(key);
  }
  async set(key: string, value: string): Promise<void> {
    this.items.set(key, value);
  }
  async remove(key: string): Promise<boolean> {
    return this.items.delete(key);
  }
  async keys(): Promise<string[]> {
    return [...this.items.keys()].sort();
  }
}
