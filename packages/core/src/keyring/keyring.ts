/**
 * The narrow store every backend implements. Keys are short ASCII names (a profile name, or a
 * session key such as `sts.GetSessionToken,…`); values are opaque strings (JSON in practice).
 * Implementations must make `set` atomic: a failed write leaves the previous value intact.
 */
export interface Keyring {
  /** Which backend this is, for messages: `keychain`, `file`, `memory`. */
  readonly backend: string;
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, label?: string): Promise<void>;
  /** True when something was removed. */
  remove(key: string): Promise<boolean>;
  keys(): Promise<string[]>;
}
