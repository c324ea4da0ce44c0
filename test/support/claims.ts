import { randomUUID } from 'node:crypto';
import { generateClaimToken, hashClaimToken } from '../../shared/claims/token.js';
import type { Claim } from '../../shared/inventory/model.js';

export const NOW = new Date('2026-11-28T12:00:00Z');
const HOUR = 3600;

/** A fresh single-use claim valid for an hour after NOW, and its token. */
export function newClaim(overrides: Partial<Claim> = {}): { token: string; claim: Claim } {
  const token = generateClaimToken();
  const expiresAt = Math.floor(NOW.getTime() / 1000) + HOUR;
  return {
    token,
    claim: {
      tokenHash: hashClaimToken(token),
      claimId: randomUUID(),
      batchId: 'B1',
      status: 'ACTIVE',
      expiresAt,
      purgeAt: expiresAt + 30 * 24 * HOUR,
      maxUses: 1,
      usesLeft: 1,
      allowServerKeygen: false,
      createdAt: NOW.toISOString(),
      ...overrides,
    },
  };
}

/** A serial number no other test uses. */
export function newSerial(prefix = 'SN'): string {
  return `${prefix}-${randomUUID().slice(0, 12)}`;
}
