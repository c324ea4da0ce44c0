import { randomUUID } from 'node:crypto';
import { mintClaim } from '../../shared/claims/mint-claim.js';
import type { Claim } from '../../shared/inventory/model.js';

export const NOW = new Date('2026-11-28T12:00:00Z');

/** A fresh single-use claim valid for an hour after NOW, and its token; overrides change the stored claim. */
export function newClaim(overrides: Partial<Claim> = {}): { token: string; claim: Claim } {
  const { token, claim } = mintClaim({ batchId: 'B1', ttlSeconds: 3600 }, NOW);
  return { token, claim: { ...claim, ...overrides } };
}

/** A serial number no other test uses. */
export function newSerial(prefix = 'SN'): string {
  return `${prefix}-${randomUUID().slice(0, 12)}`;
}
