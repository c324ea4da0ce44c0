import type { Claim, DeviceRecord, Failure, Progress } from './model.js';

export interface IssuedCertificate {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
}

/**
 * Thrown when the reservation transaction's conditions fail. It says which side failed so that the
 * saga can re-read and explain (used up, revoked, serial taken) rather than guess.
 */
export class ReservationRejectedError extends Error {
  override readonly name = 'ReservationRejectedError';
  constructor(
    readonly claimRejected: boolean,
    readonly deviceRejected: boolean,
  ) {
    super('the claim or device changed since it was read');
  }
}

/** The device inventory and claim store (DynamoDB in production, DynamoDB Local in tests). */
export interface Inventory {
  getClaim(tokenHash: string): Promise<Claim | undefined>;
  getDevice(serialNumber: string): Promise<DeviceRecord | undefined>;
  /** Spends one use of the claim and creates the PROVISIONING device record, atomically. */
  reserve(claim: Claim, device: DeviceRecord, now: Date): Promise<void>;
  /**
   * A new attempt by the same claim takes the record over, without spending another use: a FAILED
   * record, a PROVISIONING one whose lease lapsed (its attempt died), or an ACTIVE server-keygen one
   * (the device lost its key). The claim must still be valid; the previous failure joins `failures`.
   */
  takeOver(previous: DeviceRecord, next: DeviceRecord, now: Date): Promise<void>;
  recordCertificate(
    device: DeviceRecord,
    certificate: IssuedCertificate,
    progress: Progress,
    now: Date,
  ): Promise<void>;
  markActive(device: DeviceRecord, progress: Progress, now: Date): Promise<void>;
  /**
   * One page of devices in `status` last updated before `updatedBefore` (oldest first), from the
   * byStatus index; FAILED pages hold only rollbacks that were left INCOMPLETE.
   */
  listForReconcile(
    status: 'PROVISIONING' | 'FAILED',
    updatedBefore: Date,
    limit: number,
    cursor?: string,
  ): Promise<{ devices: DeviceRecord[]; cursor?: string }>;
  /** The reconciler takes a stale or incompletely rolled-back record, as PROVISIONING under its lease. */
  takeForReconcile(previous: DeviceRecord, next: DeviceRecord, now: Date): Promise<boolean>;
  markFailed(device: DeviceRecord, progress: Progress, failure: Failure, now: Date): Promise<void>;
}
