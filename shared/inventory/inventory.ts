import type { Claim, DeviceRecord, Failure, PendingAttachments, Progress, PublicKeyItem } from './model.js';

export interface IssuedCertificate {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
}

/** Which conditions of a reservation or take-over transaction failed. */
export interface Rejections {
  claim: boolean;
  device: boolean;
  /** The thing name is reserved for another serial number. */
  thingName: boolean;
  /** The public key is already another device's. */
  publicKey: boolean;
  /** The claim's batch was revoked. */
  batch: boolean;
}

/**
 * Thrown when the reservation transaction's conditions fail. It says which part failed so that the
 * saga can re-read and explain (used up, revoked, serial or thing name taken) rather than guess.
 */
export class ReservationRejectedError extends Error {
  override readonly name = 'ReservationRejectedError';
  readonly rejected: Rejections;
  constructor(rejected: Partial<Rejections>) {
    super('the claim or device changed since it was read');
    this.rejected = {
      claim: false,
      device: false,
      thingName: false,
      publicKey: false,
      batch: false,
      ...rejected,
    };
  }
}

/** The device inventory and claim store (DynamoDB in production, DynamoDB Local in tests). */
export interface Inventory {
  getClaim(tokenHash: string): Promise<Claim | undefined>;
  getDevice(serialNumber: string): Promise<DeviceRecord | undefined>;
  /**
   * Spends one use of the claim, creates the PROVISIONING device record, reserves its thing name for
   * this serial for life and records its public key as this device's, atomically.
   */
  reserve(claim: Claim, device: DeviceRecord, now: Date): Promise<void>;
  /**
   * A new attempt takes the record over, without spending another use: a FAILED record, a
   * PROVISIONING one whose lease lapsed (its attempt died), or an ACTIVE server-keygen one (the device
   * lost its key). Who may is the saga's rule (register-device.ts); here the claim must still be valid
   * (and single-use when `singleUseClaim`), the record unchanged since it was read, and the new public
   * key no other device's. The previous failure joins `failures`.
   */
  takeOver(
    previous: DeviceRecord,
    next: DeviceRecord,
    now: Date,
    options: { singleUseClaim: boolean },
  ): Promise<void>;
  /**
   * A reset device registers again: spends one use of its new claim (bound to its serial number) and
   * starts the attempt on the RESET record, still unchanged since it was read, with the new public key
   * recorded as this device's, atomically.
   */
  reRegister(claim: Claim, previous: DeviceRecord, next: DeviceRecord, now: Date): Promise<void>;
  /**
   * An attempt that AWS IoT throttled stops here and keeps what it made: its progress and certificate
   * are recorded and its lease released (still PROVISIONING), so the device's retry resumes it.
   */
  pause(
    device: DeviceRecord,
    certificate: IssuedCertificate | undefined,
    progress: Progress,
    now: Date,
  ): Promise<void>;
  /**
   * The registration's commit: records the certificate, marks the device ACTIVE, releases the lease
   * and counts the device on its batch, atomically. Sent beside the attachments; nothing after it is
   * ever rolled back.
   */
  complete(
    device: DeviceRecord,
    certificate: IssuedCertificate,
    progress: Progress,
    now: Date,
  ): Promise<void>;
  /**
   * Moves a PROVISIONING record still under `device`'s lease to `leaseId`, so that no write of the
   * attempt's old lease (a commit still in flight) can land any more. False if the record is not so.
   */
  fence(device: DeviceRecord, leaseId: string): Promise<boolean>;
  /**
   * Notes (or, undefined, clears) on an ACTIVE record, while it still has `device.certificateId`, that
   * its certificate's attachments did not all land: the device's retry re-attaches them.
   */
  noteAttachments(device: DeviceRecord, pending: PendingAttachments | undefined): Promise<void>;
  /** Whether any device record (of any status) names this certificate. */
  isCertificateReferenced(certificateId: string): Promise<boolean>;
  /** The `key#` item of a public key, if this backend was ever asked to certify it. */
  publicKeyRecord(publicKeySha256: string): Promise<PublicKeyItem | undefined>;
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
  /**
   * Records a failed attempt. The certificate is kept on the record while it still exists
   * (`progress.certificate`), and removed once deleted, so a retry never reuses a deleted one.
   */
  markFailed(
    device: DeviceRecord,
    progress: Progress,
    failure: Failure,
    now: Date,
    certificate?: IssuedCertificate,
    /** Who records it, for the device's history: the device's attempt (default) or the reconciler. */
    actor?: string,
  ): Promise<void>;
}
