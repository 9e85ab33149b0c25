/**
 * aws-vault's keyring item names carry the profile and discriminator as base64url fields. Go's
 * base64.URLEncoding keeps the `=` padding; match it so aws-vault recognises the key.
 */
export function encodeKeyField(text: string): string {
  const unpadded = Buffer.from(text, 'utf8').toString('base64url');
  return unpadded + '='.repeat((4 - (unpadded.length % 4)) % 4);
}
