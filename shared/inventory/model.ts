/** What the inventory stores. Attribute names are the DynamoDB attribute names. */

export type ClaimStatus = 'ACTIVE' | 'REVOKED';

export interface Claim {
  /** SHA-256 of the token, hex. The token itself is never stored. */
  tokenHash: string;
  claimId: string;
  batchId: string;
  status: ClaimStatus;
  /** Epoch seconds after which the token is refused. */
  expiresAt: number;
  /** Epoch seconds after which DynamoDB TTL may delete the item (kept a while to answer "expired"). */
  purgeAt: number;
  maxUses: number;
  usesLeft: number;
  /** When set, the token registers only this serial number. */
  serialNumber?: string;
  allowServerKeygen: boolean;
  thingNamePrefix?: string;
  /** Attributes stamped on every device registered with this claim. */
  attributes?: Record<string, string>;
  createdAt: string;
}

export type DeviceStatus = 'PROVISIONING' | 'ACTIVE' | 'FAILED' | 'DECOMMISSIONED' | 'RESET';

/** Which saga steps have completed: the reconciler and resumed retries read this. */
export interface Progress {
  certificate: boolean;
  thing: boolean;
  policyAttached: boolean;
  thingAttached: boolean;
  /**
   * Whether the certificate may be ACTIVE, so that rollback deactivates it. Set before the call that
   * may activate it is sent (CreateCertificateFromCsr, which creates certificates ACTIVE, or a resumed
   * attempt's UpdateCertificate), not after it answers: one whose answer was lost may have landed.
   */
  certificateActive: boolean;
}

export const NOTHING_DONE: Progress = {
  certificate: false,
  thing: false,
  policyAttached: false,
  thingAttached: false,
  certificateActive: false,
};

export interface Failure {
  /** The saga step that failed, or `reconcile` for a stale registration the reconciler rolled back. */
  step: 'create' | 'attach' | 'activate' | 'reconcile';
  /** The error's stable code or name (never its message: AWS messages can echo input). */
  error: string;
  at: string;
  /** COMPLETED: everything created was undone. INCOMPLETE: `leftovers` still exist. */
  rollback: 'COMPLETED' | 'INCOMPLETE';
  leftovers: string[];
  /** The attempt's certificate, if one was created (it may since have been deleted). */
  certificateId?: string;
}

export interface DeviceRecord {
  /** Device records have none; the other items of the devices table do. */
  kind?: never;
  serialNumber: string;
  thingName: string;
  status: DeviceStatus;
  batchId: string;
  claimId: string;
  tokenHash: string;
  /** Random per device record; stamped on the thing so that we only ever delete a thing we created. */
  provisioningId: string;
  /** Random per attempt: every write of an attempt is conditional on it (who owns the record now). */
  leaseId: string;
  /** Epoch milliseconds until which the attempt holding the lease may work undisturbed. */
  leaseUntil: number;
  /** SHA-256 of the CSR's DER, or `server-keygen`. */
  csrSha256: string;
  /**
   * SHA-256 of the current attempt's SubjectPublicKeyInfo (DER), hex. Only the holder of this key may
   * resume the attempt; a `key#` item records it for good (see PublicKeyItem).
   */
  publicKeySha256: string;
  certificateId?: string;
  certificateArn?: string;
  certificatePem?: string;
  progress: Progress;
  attributes: Record<string, string>;
  failure?: Failure;
  createdAt: string;
  updatedAt: string;
  decommissionedAt?: string;
  /** When the registration last completed (the certificate went ACTIVE). */
  activatedAt?: string;
  /** When it first completed: a re-issue of a server-generated key does not move it. */
  firstActivatedAt?: string;
  /** Set when the registration committed but an attachment failed; the device's retry re-attaches. */
  attachmentsPending?: PendingAttachments;
  /** A certificate rotation under way (shared/lifecycle/rotate-device.ts). */
  rotation?: Rotation;
  /**
   * The rotation's state and when the reconciler must look at it (ISSUING, RETIRING: when the lease
   * lapses; PENDING: when the grace period ends), top level for the sparse byRotation index.
   */
  rotationState?: Rotation['state'];
  rotationDueAt?: string;
  /** When an operator last asked this device to rotate. */
  rotationRequestedAt?: string;
  /** When the current certificate became current through a rotation. */
  rotatedAt?: string;
  /** The certificate the last rotation retired. */
  previousCertificateId?: string;
  /** When an operator last reset it (after a repair). */
  resetAt?: string;
  /**
   * The thing outlives this record's attempts (a reset device's thing holds its identity and data):
   * rollbacks never delete it.
   */
  keepThing?: boolean;
  /** Claims (token hashes) of earlier registrations of this serial, before a reset. */
  formerClaims?: string[];
}

/**
 * A rotation: ISSUING while its attempt creates and attaches the new certificate, PENDING while both
 * work (until the device confirms the new one, or the grace period ends), RETIRING while the old one
 * is retired after that.
 */
export interface Rotation {
  state: 'ISSUING' | 'PENDING' | 'RETIRING';
  rotationId: string;
  /** SHA-256 of the new key's SubjectPublicKeyInfo, hex. */
  publicKeySha256: string;
  csrSha256: string;
  startedAt: string;
  /** The new certificate (PENDING), or the old one being retired (RETIRING). */
  certificateId?: string;
  certificateArn?: string;
  certificatePem?: string;
  /** PENDING: when the old certificate is retired without a confirmation. */
  graceUntil?: string;
  /**
   * ISSUING: an earlier PENDING certificate this rotation replaces (the device asked again with
   * another new key), retired before the new one is created.
   */
  superseded?: { certificateId: string; certificateArn: string };
}

export interface PendingAttachments {
  /** The error's stable code or name. */
  error: string;
  at: string;
}

/**
 * Items that share the devices table with device records, under keys no serial number can take
 * (serials never contain `#`), written in the same transaction as the device they belong to.
 */
export const THING_NAME_KEY_PREFIX = 'thing#';
export const PUBLIC_KEY_KEY_PREFIX = 'key#';

/**
 * A proof's nonce, spent: in the claims table (whose TTL purges it once the proof would be too old
 * anyway) under a key no token hash can take, with no uses, like claims requests.
 */
export const NONCE_KEY_PREFIX = 'nonce#';

/** A thing name, reserved for one serial number for life (decommissioned or not). */
export interface ThingNameItem {
  serialNumber: `thing#${string}`;
  kind: 'thing-name';
  thingName: string;
  owner: string;
  createdAt: string;
}

/**
 * A public key this backend was asked to certify, recorded before any certificate is created for it:
 * how the reconciler recognises a certificate as one this backend created, even if the attempt died
 * before recording it. One key belongs to one device.
 */
export interface PublicKeyItem {
  serialNumber: `key#${string}`;
  kind: 'public-key';
  publicKeySha256: string;
  owner: string;
  createdAt: string;
  /** The latest attempt that asked for a certificate for this key. */
  lastAttemptAt: string;
}

export const thingNameKey = (thingName: string) => `${THING_NAME_KEY_PREFIX}${thingName}` as const;
export const publicKeyKey = (sha256: string) => `${PUBLIC_KEY_KEY_PREFIX}${sha256}` as const;

/** Whether a devices-table item is a device record (not a thing-name or public-key item). */
export function isDeviceRecord(item: { serialNumber: string; kind?: unknown }): boolean {
  return item.kind === undefined;
}

export const SERVER_KEYGEN = 'server-keygen';

/**
 * A batch of claims as an item of its own, in the claims table under `batch#<batchId>`: its status
 * (revoking a batch is one write, checked by every registration's transaction) and its counts, kept
 * by the writes that change them. Counters are flat attributes so that ADD works on an item that
 * does not have them yet: `issued@<expiresAt>`, `used@<expiresAt>`, `revoked@<expiresAt>` count
 * tokens by their expiry (epoch seconds), which is what tells "expired" apart; `devices@<STATUS>`
 * counts device records by status.
 */
export type BatchCounter = `${'issued' | 'used' | 'revoked'}@${number}` | `devices@${DeviceStatus}`;

export type BatchItem = BatchFields & Partial<Record<BatchCounter, number>>;

interface BatchFields {
  tokenHash: `batch#${string}`;
  kind: 'batch';
  batchId: string;
  status: 'ACTIVE' | 'REVOKED';
  createdAt: string;
  revokedAt?: string;
  /** When an operator asked every device of the batch to rotate. */
  rotationRequestedAt?: string;
  firstRegistrationAt?: string;
  lastRegistrationAt?: string;
}

export const batchKey = (batchId: string) => `batch#${batchId}` as const;
export const issuedCounter = (expiresAt: number) => `issued@${expiresAt}` as const;
export const usedCounter = (expiresAt: number) => `used@${expiresAt}` as const;
export const revokedCounter = (expiresAt: number) => `revoked@${expiresAt}` as const;
export const devicesCounter = (status: DeviceStatus) => `devices@${status}` as const;

/** The certificate a record names, if it names one whole. */
export function recordedCertificate(
  record: Pick<DeviceRecord, 'certificateId' | 'certificateArn' | 'certificatePem'>,
): { certificateId: string; certificateArn: string; certificatePem: string } | undefined {
  const { certificateId, certificateArn, certificatePem } = record;
  return certificateId && certificateArn && certificatePem
    ? { certificateId, certificateArn, certificatePem }
    : undefined;
}
