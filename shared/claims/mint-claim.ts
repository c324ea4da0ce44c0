import { randomUUID } from 'node:crypto';
import type { Claim } from '../inventory/model.js';
import { epochSeconds } from './claim-rules.js';
import { generateClaimToken, hashClaimToken } from './token.js';

export interface ClaimSpec {
  batchId: string;
  ttlSeconds: number;
  maxUses?: number;
  serialNumber?: string;
  allowServerKeygen?: boolean;
  thingNamePrefix?: string;
  attributes?: Record<string, string>;
}

/** How long an expired claim is kept (to answer "expired" rather than "unknown") before TTL deletes it. */
export const CLAIM_RETENTION_SECONDS = 30 * 24 * 3600;

/** A new claim and its token. The token is returned once; the claim stores only its hash. */
export function mintClaim(spec: ClaimSpec, now: Date = new Date()): { token: string; claim: Claim } {
  const token = generateClaimToken();
  const expiresAt = epochSeconds(now) + spec.ttlSeconds;
  const maxUses = spec.maxUses ?? 1;
  return {
    token,
    claim: {
      tokenHash: hashClaimToken(token),
      claimId: randomUUID(),
      batchId: spec.batchId,
      status: 'ACTIVE',
      expiresAt,
      purgeAt: expiresAt + CLAIM_RETENTION_SECONDS,
      maxUses,
      usesLeft: maxUses,
      allowServerKeygen: spec.allowServerKeygen ?? false,
      createdAt: now.toISOString(),
      ...(spec.serialNumber ? { serialNumber: spec.serialNumber } : {}),
      ...(spec.thingNamePrefix ? { thingNamePrefix: spec.thingNamePrefix } : {}),
      ...(spec.attributes ? { attributes: spec.attributes } : {}),
    },
  };
}
