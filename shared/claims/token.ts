import { createHash, randomBytes } from 'node:crypto';

/**
 * Claim tokens: `fpc_` + 43 base64url characters (256 random bits). The fixed prefix lets secret
 * scanners spot a leaked token; only the SHA-256 of the whole token is ever stored.
 */
export const CLAIM_TOKEN_PREFIX = 'fpc_';
export const CLAIM_TOKEN_PATTERN = /^fpc_[A-Za-z0-9_-]{43}$/;

export function generateClaimToken(random: (size: number) => Buffer = randomBytes): string {
  return `${CLAIM_TOKEN_PREFIX}${random(32).toString('base64url')}`;
}

export function hashClaimToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function isClaimTokenFormat(value: string): boolean {
  return CLAIM_TOKEN_PATTERN.test(value);
}
