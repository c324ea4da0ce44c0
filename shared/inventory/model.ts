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

export type DeviceStatus = 'PROVISIONING' | 'ACTIVE' | 'FAILED' | 'DECOMMISSIONED';

/** Which saga steps have completed: the reconciler and resumed retries read this. */
export interface Progress {
  certificate: boolean;
  thing: boolean;
  policyAttached: boolean;
  thingAttached: boolean;
  /** Certificates are created INACTIVE and activated last, once recorded and attached. */
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
}

export interface DeviceRecord {
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
  certificateId?: string;
  certificateArn?: string;
  certificatePem?: string;
  progress: Progress;
  attributes: Record<string, string>;
  failure?: Failure;
  createdAt: string;
  updatedAt: string;
  decommissionedAt?: string;
}

export const SERVER_KEYGEN = 'server-keygen';
