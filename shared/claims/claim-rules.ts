import {
  ClaimExpiredError,
  ClaimRevokedError,
  ClaimUsedUpError,
  SerialNotAllowedError,
  ServerKeygenNotAllowedError,
} from '../errors.js';
import type { Claim } from '../inventory/model.js';

export interface ClaimUse {
  serialNumber: string;
  serverKeygen: boolean;
  now: Date;
}

/**
 * Whether a claim may be spent on this registration. The same rules are repeated as the
 * transaction's condition (shared/inventory), which is what makes them hold under races.
 */
export function assertClaimUsable(claim: Claim, use: ClaimUse, options: { spendsAUse: boolean }): void {
  if (claim.status === 'REVOKED') throw new ClaimRevokedError('this claim token was revoked');
  if (claim.expiresAt <= epochSeconds(use.now)) throw new ClaimExpiredError('this claim token has expired');
  if (claim.serialNumber !== undefined && claim.serialNumber !== use.serialNumber) {
    throw new SerialNotAllowedError('this claim token is bound to a different serial number');
  }
  if (use.serverKeygen && !claim.allowServerKeygen) {
    throw new ServerKeygenNotAllowedError(
      'send a CSR: server-side key generation is not enabled for this batch',
    );
  }
  if (options.spendsAUse && claim.usesLeft <= 0)
    throw new ClaimUsedUpError('this claim token has no uses left');
}

export function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
