import type { HistoryItem } from '../history/history.js';
import type { BatchItem, Claim, DeviceRecord, DeviceStatus } from '../inventory/model.js';
import type { ClaimsRequestRecord } from './idempotency.js';

export interface Page<T> {
  items: T[];
  /** Opaque: pass it back to get the next page; absent on the last page. */
  cursor?: string;
}

/** The inventory as the manufacturing line's admin API sees it. */
export interface AdminStore {
  /**
   * Reserves each thing name for its serial number (the `thing#` items registration checks), for
   * claims bound to serials; returns the names another serial already holds.
   */
  reserveThingNames(names: { thingName: string; serialNumber: string }[], now: Date): Promise<string[]>;
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
  /**
   * ACTIVE -> REVOKED; false if it was not ACTIVE (already revoked, or gone). A token revoked while
   * unused is counted as revoked in its batch.
   */
  revokeClaim(claim: Claim, now: Date): Promise<boolean>;
  /** Creates the batch item (ACTIVE) if there is none; false if the batch was revoked. */
  openBatch(batchId: string, now: Date): Promise<boolean>;
  /** Counts tokens minted into the batch, by expiry. */
  countIssued(batchId: string, expiresAt: number, count: number): Promise<void>;
  /**
   * The batch REVOKED, in one write (the first revocation's time is kept); the item after it, or
   * undefined if there is no such batch.
   */
  revokeBatch(batchId: string, now: Date): Promise<BatchItem | undefined>;
  getBatch(batchId: string): Promise<BatchItem | undefined>;
  listBatches(limit: number, cursor?: string): Promise<Page<BatchItem>>;
  getDevice(serialNumber: string): Promise<DeviceRecord | undefined>;
  listDevices(
    filter: { batchId?: string; status?: DeviceStatus },
    limit: number,
    cursor?: string,
  ): Promise<Page<DeviceRecord>>;
  /**
   * Takes an ACTIVE or FAILED record under a new lease, so that no registration resumes it while the
   * operator's decommission works; false if it changed since it was read.
   */
  holdForDecommission(device: DeviceRecord, held: DeviceRecord, now: Date): Promise<boolean>;
  /** Gives up that lease (a decommission that could not finish), if it is still held. */
  releaseHold(held: DeviceRecord): Promise<void>;
  /**
   * ACTIVE or FAILED -> DECOMMISSIONED under the record's current lease (a rotation's state removed:
   * its certificates were retired); false if it changed meanwhile. History DECOMMISSIONED by `actor`.
   */
  markDecommissioned(device: DeviceRecord, now: Date, actor: string): Promise<boolean>;
  /**
   * ACTIVE, FAILED or DECOMMISSIONED -> RESET under the record's current lease: certificates (already
   * retired) and rotation removed, thing and thing name kept, the thing marked as outliving attempts;
   * false if it changed meanwhile. History RESET by `actor`.
   */
  markReset(device: DeviceRecord, now: Date, actor: string): Promise<boolean>;
  /**
   * Forgets a rotation whose certificates were retired, while `held` still holds the record: an
   * operator's decommission or reset that stops halfway must not leave a rotation naming a deleted
   * certificate for the reconciler to promote.
   */
  dropRotation(held: DeviceRecord): Promise<void>;
  /** Records an operator's request that an ACTIVE device rotate; false if it is not ACTIVE. */
  requestRotation(device: DeviceRecord, now: Date, actor: string): Promise<boolean>;
  /** Records an operator's request that every device of a batch rotate: one write. */
  requestBatchRotation(batchId: string, now: Date): Promise<BatchItem | undefined>;
  /** One page of a device's history, oldest first. */
  listHistory(serialNumber: string, limit: number, cursor?: string): Promise<Page<HistoryItem>>;
}
