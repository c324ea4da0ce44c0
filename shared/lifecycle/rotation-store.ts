import type { HistoryEntry } from '../history/history.js';
import type { BatchItem, DeviceRecord, Rotation } from '../inventory/model.js';

/** A new lease on a device record: who works on it now, and until when. */
export interface Lease {
  leaseId: string;
  leaseUntil: number;
}

/** Which condition of a rotation's first write failed. */
export interface RotationRejections {
  /** The record changed since it was read (another request, an operator, the reconciler). */
  device: boolean;
  /** The proof's nonce was spent before: a replay. */
  nonce: boolean;
  /** The new key is another device's. */
  publicKey: boolean;
}

export class RotationRejectedError extends Error {
  override readonly name = 'RotationRejectedError';
  constructor(readonly rejected: RotationRejections) {
    super('the rotation was refused by a condition');
  }
}

/**
 * The device records as certificate rotation sees them (DynamoDB in production). Every write of a
 * rotation is conditional on the record's lease and the rotation's id, and each one that changes
 * what the device holds appends to its history in the same transaction.
 */
export interface RotationStore {
  getDevice(serialNumber: string): Promise<DeviceRecord | undefined>;
  getBatch(batchId: string): Promise<BatchItem | undefined>;
  /**
   * Starts a rotation (ISSUING) on an ACTIVE record nobody holds, unchanged since `device` was read,
   * under `lease`; spends the proof's nonce and records the new key as this device's, atomically.
   * Throws RotationRejectedError with what refused it.
   */
  beginRotation(
    device: DeviceRecord,
    rotation: Rotation,
    lease: Lease,
    nonceKey: string,
    now: Date,
  ): Promise<void>;
  /** ISSUING -> PENDING with the new certificate, lease released; history ROTATED. */
  commitRotation(held: DeviceRecord, rotation: Rotation, now: Date): Promise<void>;
  /**
   * Ends an ISSUING rotation that failed, while `held` still holds it: the rotation removed, the
   * lease released, history ROTATION_FAILED. False if the record is not so (its commit landed, or
   * someone took it over). Also the fence that stops a late commit from landing.
   */
  abandonRotation(
    held: DeviceRecord,
    entry: HistoryEntry,
    now: Date,
    /** The state it must still be in: ISSUING (the attempt's own), or PENDING (a certificate gone). */
    state?: 'ISSUING' | 'PENDING',
  ): Promise<boolean>;
  /**
   * The new certificate becomes the device's (PENDING -> RETIRING with the old one to retire), under
   * `lease`, on a record nobody holds and unchanged since read; spends the nonce of the device's
   * confirmation if given. History `entry` (CONFIRMED, or GRACE_ENDED by the reconciler).
   */
  promote(
    device: DeviceRecord,
    lease: Lease,
    entry: HistoryEntry,
    now: Date,
    nonceKey?: string,
  ): Promise<void>;
  /** RETIRING -> no rotation: the old certificate is gone. History CERTIFICATE_RETIRED. */
  finishRetirement(held: DeviceRecord, entry: HistoryEntry, now: Date): Promise<boolean>;
  /** Takes a record whose rotation is under way but whose lease lapsed (the reconciler, a retry). */
  takeRotation(device: DeviceRecord, lease: Lease, now: Date): Promise<boolean>;
  /** Gives up the lease, if still held. */
  release(held: DeviceRecord): Promise<void>;
  /** Spends a nonce outside a rotation's write (asking again for the same new certificate). */
  spendNonce(nonceKey: string, now: Date): Promise<boolean>;
  /** One page of records in a rotation state whose due time has passed (oldest first). */
  listRotationsDue(
    state: Rotation['state'],
    dueBefore: Date,
    limit: number,
    cursor?: string,
  ): Promise<{ devices: DeviceRecord[]; cursor?: string }>;
}
