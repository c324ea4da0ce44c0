import type { Claim, DeviceRecord, DeviceStatus } from '../inventory/model.js';
import type { ClaimsRequestRecord } from './idempotency.js';

export interface Page<T> {
  items: T[];
  /** Opaque: pass it back to get the next page; absent on the last page. */
  cursor?: string;
}

/** The inventory as the manufacturing line's admin API sees it. */
export interface AdminStore {
  /**
   * Records a claims request under its idempotency key, unless the key is already recorded: then
   * nothing is written and the earlier record is returned.
   */
  reserveClaimsRequest(record: ClaimsRequestRecord): Promise<ClaimsRequestRecord | undefined>;
  /** Marks the request under this key COMPLETED (its claims are all written). */
  completeClaimsRequest(idempotencyKey: string): Promise<void>;
  /** Writes claims in batches of 25 with bounded parallelism, retrying unprocessed items. */
  putClaims(claims: Claim[]): Promise<void>;
  listClaims(batchId: string, limit: number, cursor?: string): Promise<Page<Claim>>;
  /** The claim with this id, found through the byClaimId index. */
  findClaim(claimId: string): Promise<Claim | undefined>;
  /** ACTIVE -> REVOKED; false if it was not ACTIVE (already revoked, or gone). */
  revokeClaim(tokenHash: string, now: Date): Promise<boolean>;
  getDevice(serialNumber: string): Promise<DeviceRecord | undefined>;
  listDevices(
    filter: { batchId?: string; status?: DeviceStatus },
    limit: number,
    cursor?: string,
  ): Promise<Page<DeviceRecord>>;
  /** ACTIVE or FAILED -> DECOMMISSIONED under the record's current lease; false if it changed meanwhile. */
  markDecommissioned(device: DeviceRecord, now: Date): Promise<boolean>;
}
