import * as z from 'zod/mini';
import { CLAIM_TOKEN_PATTERN } from '../claims/token.js';

/**
 * What each admin route answers: the one copy that gives the handlers' return types and that the
 * `fleet` CLI checks every answer against. Views are loose objects: a client keeps (and prints)
 * members a newer API adds; only the members listed here are required.
 */

export const DEVICE_STATUSES = ['PROVISIONING', 'ACTIVE', 'FAILED', 'DECOMMISSIONED', 'RESET'] as const;
export const CLAIM_STATUSES = ['ACTIVE', 'REVOKED'] as const;

/** A claim as POST /claims returns it, once: the token is never stored, only its SHA-256. */
export const createdClaimSchema = z.object({
  claimId: z.string(),
  token: z.string().check(z.regex(CLAIM_TOKEN_PATTERN)),
  expiresAt: z.string(),
  serialNumber: z.optional(z.string()),
});
export type CreatedClaim = z.infer<typeof createdClaimSchema>;

export const createClaimsResponseSchema = z.object({
  batchId: z.string(),
  claims: z.array(createdClaimSchema),
});
export type CreateClaimsResponse = z.infer<typeof createClaimsResponseSchema>;

/** A claim as the admin API shows it: never the token hash. */
export const claimViewSchema = z.looseObject({
  claimId: z.string(),
  batchId: z.string(),
  status: z.enum(CLAIM_STATUSES),
  expiresAt: z.string(),
  maxUses: z.number(),
  usesLeft: z.number(),
  serialNumber: z.optional(z.string()),
  allowServerKeygen: z.boolean(),
  createdAt: z.string(),
});
export type ClaimView = z.infer<typeof claimViewSchema>;

export const listClaimsResponseSchema = z.object({
  claims: z.array(claimViewSchema),
  cursor: z.optional(z.string()),
});
export type ListClaimsResponse = z.infer<typeof listClaimsResponseSchema>;

export const revokeClaimsResponseSchema = z.looseObject({ revoked: z.int().check(z.minimum(0)) });
export type RevokeClaimsResponse = z.infer<typeof revokeClaimsResponseSchema>;

const failureSchema = z.looseObject({
  step: z.enum(['create', 'attach', 'activate', 'reconcile']),
  error: z.string(),
  at: z.string(),
  rollback: z.enum(['COMPLETED', 'INCOMPLETE']),
  leftovers: z.array(z.string()),
  certificateId: z.optional(z.string()),
});

export const deviceViewSchema = z.looseObject({
  serialNumber: z.string(),
  thingName: z.string(),
  status: z.enum(DEVICE_STATUSES),
  batchId: z.string(),
  claimId: z.string(),
  certificateId: z.optional(z.string()),
  attributes: z.record(z.string(), z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
  decommissionedAt: z.optional(z.string()),
  failure: z.optional(failureSchema),
  /** When an operator reset it (RESET: it may register again with a claim bound to its serial). */
  resetAt: z.optional(z.string()),
  /** When its last rotation was confirmed (or its grace period ended). */
  rotatedAt: z.optional(z.string()),
  rotation: z.optional(
    z.looseObject({
      /** When an operator asked it (or its batch) to rotate, if after its certificate was issued. */
      requestedAt: z.optional(z.string()),
      due: z.boolean(),
      /** Due for longer than the deployment's ROTATION_OVERDUE_AFTER_SECONDS. */
      overdue: z.boolean(),
      pendingCertificateId: z.optional(z.string()),
      graceUntil: z.optional(z.string()),
    }),
  ),
});
export type DeviceView = z.infer<typeof deviceViewSchema>;

export const listDevicesResponseSchema = z.object({
  devices: z.array(deviceViewSchema),
  cursor: z.optional(z.string()),
});
export type ListDevicesResponse = z.infer<typeof listDevicesResponseSchema>;

export const HISTORY_EVENTS = [
  'REGISTERED',
  'FAILED',
  'ROLLED_BACK',
  'ROTATION_REQUESTED',
  'ROTATED',
  'ROTATION_FAILED',
  'CONFIRMED',
  'GRACE_ENDED',
  'CERTIFICATE_RETIRED',
  'RESET',
  'DECOMMISSIONED',
] as const;
export type HistoryEventName = (typeof HISTORY_EVENTS)[number];

/** One entry of a device's append-only history; details depend on the event. */
export const historyEventSchema = z.looseObject({
  at: z.string(),
  event: z.enum(HISTORY_EVENTS),
  /** `device`, `reconciler`, or the operator's IAM principal (ARN). */
  actor: z.string(),
  certificateId: z.optional(z.string()),
  previousCertificateId: z.optional(z.string()),
  step: z.optional(z.string()),
  error: z.optional(z.string()),
  rollback: z.optional(z.enum(['COMPLETED', 'INCOMPLETE'])),
  leftovers: z.optional(z.array(z.string())),
  batchId: z.optional(z.string()),
  claimId: z.optional(z.string()),
});
export type HistoryEvent = z.infer<typeof historyEventSchema>;

export const deviceHistoryResponseSchema = z.object({
  serialNumber: z.string(),
  /** Oldest first. */
  events: z.array(historyEventSchema),
  cursor: z.optional(z.string()),
});
export type DeviceHistoryResponse = z.infer<typeof deviceHistoryResponseSchema>;

/**
 * An error answer (RFC 9457 problem+json) as far as a client relies on it: `errors[]` points at each
 * offending member of the request; `claimIds` comes with IDEMPOTENCY_KEY_USED.
 */
export const problemSchema = z.looseObject({
  code: z.string(),
  title: z.optional(z.string()),
  detail: z.optional(z.string()),
  errors: z.optional(z.array(z.object({ pointer: z.string(), detail: z.string() }))),
  claimIds: z.optional(z.array(z.string())),
});
export type Problem = z.infer<typeof problemSchema>;

const count = z.int().check(z.minimum(0));

export const batchViewSchema = z.looseObject({
  batchId: z.string(),
  status: z.enum(['ACTIVE', 'REVOKED']),
  createdAt: z.string(),
  revokedAt: z.optional(z.string()),
  claims: z.object({ issued: count, used: count, revoked: count, expired: count }),
  devices: z.object({ ACTIVE: count, FAILED: count, DECOMMISSIONED: count }),
  firstRegistrationAt: z.optional(z.string()),
  lastRegistrationAt: z.optional(z.string()),
  /** When an operator asked every device of the batch to rotate. */
  rotationRequestedAt: z.optional(z.string()),
});

export const listBatchesResponseSchema = z.object({
  batches: z.array(batchViewSchema),
  cursor: z.optional(z.string()),
});
