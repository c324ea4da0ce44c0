import { createHash } from 'node:crypto';
import {
  IdempotencyKeyInProgressError,
  IdempotencyKeyMismatchError,
  IdempotencyKeyUsedError,
  InvalidRequestError,
} from '../errors.js';
import type { AdminStore } from './admin-store.js';
import type { CreateClaimsRequest } from './schemas.js';

/**
 * Idempotency keys for POST /claims (the `Idempotency-Key` request header, as in the IETF httpapi
 * draft). Tokens are stored only as hashes, so a repeat cannot be answered with the first answer's
 * tokens. What is stored instead, per key, is which claims the first request minted: a repeat is
 * refused with 409 IDEMPOTENCY_KEY_USED and those claim ids, never served by minting again, so a
 * client whose answer was lost knows exactly which claims to revoke.
 */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** How long a key is remembered; a repeat after that mints anew. */
export const IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600;

/**
 * A request still PENDING this long after it began has died (the function times out at 29 s): its
 * claims may or may not have been written, and a repeat is answered as if it had completed.
 */
export const PENDING_STALE_MS = 60_000;

export interface ClaimsRequestRecord {
  idempotencyKey: string;
  batchId: string;
  /** SHA-256 of the parsed request: a key reused for another request is refused, not replayed. */
  fingerprint: string;
  claimIds: string[];
  state: 'PENDING' | 'COMPLETED';
  createdAt: string;
  /** Epoch seconds after which DynamoDB TTL may delete the record. */
  purgeAt: number;
}

/** SHA-256 of the parsed request (its members in the schema's order). */
export function requestFingerprint(request: CreateClaimsRequest): string {
  return createHash('sha256').update(JSON.stringify(request)).digest('hex');
}

export function parseIdempotencyKey(value: string): string {
  if (IDEMPOTENCY_KEY_PATTERN.test(value)) return value;
  throw new InvalidRequestError(
    'Idempotency-Key must be 1 to 128 letters, digits, "_", ".", ":" or "-" (a UUID will do)',
  );
}

/**
 * Records that this key is minting these claims, before any claim is written. A key seen before is
 * refused: 409 IDEMPOTENCY_KEY_IN_PROGRESS while the first request may still be running, 409
 * IDEMPOTENCY_KEY_USED (with the claim ids it minted) after, 422 if it came with another request.
 */
export async function reserveIdempotencyKey(
  idempotencyKey: string,
  request: CreateClaimsRequest,
  claimIds: string[],
  store: AdminStore,
  now: Date,
): Promise<void> {
  const fingerprint = requestFingerprint(request);
  const earlier = await store.reserveClaimsRequest({
    idempotencyKey,
    batchId: request.batchId,
    fingerprint,
    claimIds,
    state: 'PENDING',
    createdAt: now.toISOString(),
    purgeAt: Math.floor(now.getTime() / 1000) + IDEMPOTENCY_WINDOW_SECONDS,
  });
  if (!earlier) return;
  if (earlier.fingerprint !== fingerprint) {
    throw new IdempotencyKeyMismatchError(
      'this Idempotency-Key came with a different request; use a new key for a new request',
    );
  }
  const age = now.getTime() - Date.parse(earlier.createdAt);
  if (earlier.state === 'PENDING' && age < PENDING_STALE_MS) {
    throw new IdempotencyKeyInProgressError('the first request with this Idempotency-Key is still running', {
      retryAfterSeconds: 2,
    });
  }
  throw new IdempotencyKeyUsedError(
    `the request with this Idempotency-Key created ${earlier.claimIds.length} claims at ${earlier.createdAt}; ` +
      'their tokens were in its answer and cannot be shown again (revoke them by claimIds if that answer was lost)',
    { extensions: { batchId: earlier.batchId, claimIds: earlier.claimIds, createdAt: earlier.createdAt } },
  );
}
