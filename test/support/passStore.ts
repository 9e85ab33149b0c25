import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A real password store for the pass backend: a throwaway gpg key (no passphrase) in its own
 * GNUPGHOME, and a store initialised for it with Debian's `pass`. `close()` stops the gpg-agent
 * that gpg started for that GNUPGHOME.
 */
export class PassStore {
  readonly gnupgHome: string;
  readonly dir: string;
  readonly keyId: string;

  constructor(root: string, name = 'password-store', gnupgHome = join(root, '.gnupg'), keyId = 'vault-test@example.invalid') {
    this.gnupgHome = gnupgHome;
    this.dir = join(root, name);
    mkdirSync(this.gnupgHome, { recursive: true, mode: 0o700 });
    this.keyId = keyId;
    execFileSync('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', `vault test <${this.keyId}>`, 'future-default', 'default', 'never'], {
      env: this.env(),
      stdio: 'ignore',
    });
    this.pass(['init', this.keyId]);
  }

  /** What `pass` and `gpg` need: this GNUPGHOME and this store. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH, GNUPGHOME: this.gnupgHome, PASSWORD_STORE_DIR: this.dir, ...extra };
  }

  /** Runs `pass` itself (as aws-vault does, or as the person does), with `input` on stdin. */
  pass(args: string[], input = ''): string {
    return execFileSync('pass', args, { env: this.env(), input, stdio: ['pipe', 'pipe', 'pipe'] }).toString('utf8');
  }

  /**
   * Makes `other`'s key one this GNUPGHOME can encrypt to (public half only, fully trusted) but
   * not decrypt with: a store initialised for it takes writes that this side cannot read back.
   */
  trustPublicKeyOf(other: PassStore): void {
    const pub = execFileSync('gpg', ['--batch', '--export', other.keyId], { env: other.env() });
    execFileSync('gpg', ['--batch', '--import'], { env: this.env(), input: pub, stdio: ['pipe', 'ignore', 'ignore'] });
    const fpr = /^fpr:+([0-9A-F]+):/m.exec(execFileSync('gpg', ['--with-colons', '--fingerprint', other.keyId], { env: this.env() }).toString('utf8'))?.[1];
    execFileSync('gpg', ['--batch', '--import-ownertrust'], { env: this.env(), input: `${fpr}:6:\n`, stdio: ['pipe', 'ignore', 'ignore'] });
  }

  close(): void {
    try {
      execFileSync('gpgconf', ['--kill', 'gpg-agent'], { env: this.env(), stdio: 'ignore' });
    } catch {
      // no agent was started
    }
  }
}

/** The item aws-vault's pass backend writes: Go's json.Marshal(keyring.Item), Data base64. */
export function awsVaultItem(key: string, value: string, label: string): string {
  return JSON.stringify({
    Key: key,
    Data: Buffer.from(value, 'utf8').toString('base64'),
    Label: label,
    Description: '',
    KeychainNotTrustApplication: false,
    KeychainNotSynchronizable: false,
  });
}
