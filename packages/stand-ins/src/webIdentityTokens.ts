/**
 * The identity-provider side of the STS stand-in's AssumeRoleWithWebIdentity: the tokens an OIDC
 * issuer (a CI system, EKS) has handed out, and the checks STS makes of one before it looks at the
 * role. Tokens are opaque strings here: vault passes them through unread, as the SDKs do, so the
 * stand-in needs to know who issued a token and for whom, not to parse a JWT.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface WebIdentityTokenOptions {
  /** The token as the file or process holds it. A secret: never recorded in calls. */
  token: string;
  /** The `iss` claim, e.g. `https://token.actions.githubusercontent.com`. */
  issuer: string;
  /** The `sub` claim, e.g. `repo:org/repo:ref:refs/heads/main`; recorded in calls. */
  subject: string;
  /** The `aud` claim. Default `sts.amazonaws.com`. */
  audience?: string;
  /** Epoch ms after which STS answers ExpiredTokenException. Default: never. */
  expiresAt?: number;
}

export interface WebIdentityClaims {
  issuer: string;
  subject: string;
  audience: string;
}

/** Who a role's trust policy lets in by web identity: a Federated principal, optionally narrowed to subjects. */
export interface WebIdentityTrust {
  issuer: string;
  /** The `token.actions.githubusercontent.com:sub` style condition. Default: any subject. */
  subjects?: string[];
}

export type TokenCheck = { ok: true; claims: WebIdentityClaims } | { ok: false; status: number; code: string; message: string };

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}

export class WebIdentityTokens {
  private readonly tokens: Array<Required<Omit<WebIdentityTokenOptions, 'expiresAt'>> & { expiresAt?: number }> = [];

  add(options: WebIdentityTokenOptions): void {
    this.tokens.push({ audience: 'sts.amazonaws.com', ...options });
  }

  /** What STS says of a token before the role: unknown (InvalidIdentityToken) or expired. */
  check(token: string | undefined, now: number): TokenCheck {
    const known = token === undefined ? undefined : this.tokens.find((t) => sameSecret(t.token, token));
    if (!known) return { ok: false, status: 400, code: 'InvalidIdentityToken', message: 'Couldn\'t retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements' };
    if (known.expiresAt !== undefined && now >= known.expiresAt) return { ok: false, status: 400, code: 'ExpiredTokenException', message: 'Token expired: current date/time is after the token\'s exp claim' };
    return { ok: true, claims: { issuer: known.issuer, subject: known.subject, audience: known.audience } };
  }

  secrets(): string[] {
    return this.tokens.map((t) => t.token);
  }
}

export function trustsWebIdentity(trust: WebIdentityTrust[] | undefined, claims: WebIdentityClaims): boolean {
  return (trust ?? []).some((t) => t.issuer === claims.issuer && (t.subjects === undefined || t.subjects.includes(claims.subject)));
}
