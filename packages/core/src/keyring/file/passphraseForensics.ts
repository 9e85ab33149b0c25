/**
 * Telling a wrong passphrase from a damaged file, when the JWE will not decrypt. Unwrap the
 * content key ourselves: AES-KW's integrity check fails for a wrong passphrase (or a damaged
 * wrapped key, which nothing can tell apart), while a damaged header, IV, ciphertext or tag leaves
 * the unwrap intact and only breaks the GCM tag. True when the passphrase does unwrap the key, or
 * the header gives no PBES2 parameters to redo it with (an alg outside `readAlgs`, no p2c/p2s):
 * then the file, not the passphrase, is at fault.
 */
export async function damagedRatherThanWrongPassphrase(token: string, passphrase: Uint8Array, readAlgs: readonly string[]): Promise<boolean> {
  try {
    const [headerPart, wrappedPart] = token.split('.');
    const header = JSON.parse(Buffer.from(headerPart!, 'base64url').toString('utf8')) as { alg?: unknown; p2c?: unknown; p2s?: unknown };
    const alg = header.alg;
    if (typeof alg !== 'string' || !readAlgs.includes(alg) || typeof header.p2c !== 'number' || typeof header.p2s !== 'string') return true;
    const salt = Buffer.concat([Buffer.from(alg, 'utf8'), Buffer.of(0), Buffer.from(header.p2s, 'base64url')]);
    const base = await crypto.subtle.importKey('raw', passphrase, 'PBKDF2', false, ['deriveBits']);
    const bits = await crypto.subtle.deriveBits(
      { name: 'PBKDF2', hash: `SHA-${alg.slice(8, 11)}`, salt, iterations: header.p2c },
      base,
      parseInt(alg.slice(13, 16), 10),
    );
    const kek = await crypto.subtle.importKey('raw', bits, 'AES-KW', false, ['unwrapKey']);
    await crypto.subtle.unwrapKey('raw', Buffer.from(wrappedPart ?? '', 'base64url'), kek, 'AES-KW', { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
    return true;
  } catch {
    return false;
  }
}
