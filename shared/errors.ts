/**
 * Typed domain errors. Each carries a stable machine-readable `code`; the HTTP layer
 * (shared/http/problem.ts) is the one place that maps codes to statuses and titles.
 */
export abstract class AppError extends Error {
  abstract readonly code: ErrorCode;
  /** Seconds a client should wait before retrying, sent as `Retry-After`. */
  readonly retryAfterSeconds?: number;
  /** Safe, client-facing extra members of the problem document. */
  readonly extensions?: Record<string, unknown>;

  constructor(
    message: string,
    options: { retryAfterSeconds?: number; extensions?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options.extensions !== undefined) this.extensions = options.extensions;
  }
}

export type ErrorCode =
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_JSON'
  | 'INVALID_REQUEST'
  | 'INVALID_SERIAL_NUMBER'
  | 'INVALID_CLAIM_TOKEN'
  | 'THING_NAME_TOO_LONG'
  | 'CSR_MALFORMED'
  | 'CSR_SIGNATURE_INVALID'
  | 'CSR_SIGNATURE_ALGORITHM_UNSUPPORTED'
  | 'CSR_KEY_UNSUPPORTED'
  | 'CSR_KEY_TOO_WEAK'
  | 'CSR_REJECTED'
  | 'CLAIM_TOKEN_UNKNOWN'
  | 'CLAIM_TOKEN_EXPIRED'
  | 'CLAIM_TOKEN_REVOKED'
  | 'CLAIM_TOKEN_USED_UP'
  | 'SERIAL_NOT_ALLOWED'
  | 'SERVER_KEYGEN_NOT_ALLOWED'
  | 'SERIAL_ALREADY_REGISTERED'
  | 'REGISTRATION_IN_PROGRESS'
  | 'REGISTRATION_CONFLICT'
  | 'THING_NAME_TAKEN'
  | 'PUBLIC_KEY_IN_USE'
  | 'DEVICE_PROOF_INVALID'
  | 'DEVICE_PROOF_EXPIRED'
  | 'DEVICE_PROOF_REPLAYED'
  | 'DEVICE_NOT_ACTIVE'
  | 'ROTATION_IN_PROGRESS'
  | 'NO_ROTATION_PENDING'
  | 'DEVICE_NOT_FOUND'
  | 'CLAIM_NOT_FOUND'
  | 'BATCH_NOT_FOUND'
  | 'BATCH_REVOKED'
  | 'IDEMPOTENCY_KEY_USED'
  | 'IDEMPOTENCY_KEY_IN_PROGRESS'
  | 'IDEMPOTENCY_KEY_MISMATCH'
  | 'PAYLOAD_TOO_LARGE'
  | 'THROTTLED'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_ERROR';

// --- request shape -------------------------------------------------------------------------------
export class UnsupportedMediaTypeError extends AppError {
  readonly code = 'UNSUPPORTED_MEDIA_TYPE';
}
export class InvalidJsonError extends AppError {
  readonly code = 'INVALID_JSON';
}
export class PayloadTooLargeError extends AppError {
  readonly code = 'PAYLOAD_TOO_LARGE';
}
export class InvalidRequestError extends AppError {
  readonly code = 'INVALID_REQUEST';
}
export class InvalidSerialNumberError extends AppError {
  readonly code = 'INVALID_SERIAL_NUMBER';
}
export class InvalidClaimTokenError extends AppError {
  readonly code = 'INVALID_CLAIM_TOKEN';
}
export class ThingNameTooLongError extends AppError {
  readonly code = 'THING_NAME_TOO_LONG';
}

// --- CSR -----------------------------------------------------------------------------------------
export class CsrMalformedError extends AppError {
  readonly code = 'CSR_MALFORMED';
}
export class CsrSignatureInvalidError extends AppError {
  readonly code = 'CSR_SIGNATURE_INVALID';
}
export class CsrSignatureAlgorithmUnsupportedError extends AppError {
  readonly code = 'CSR_SIGNATURE_ALGORITHM_UNSUPPORTED';
}
export class CsrKeyUnsupportedError extends AppError {
  readonly code = 'CSR_KEY_UNSUPPORTED';
}
export class CsrKeyTooWeakError extends AppError {
  readonly code = 'CSR_KEY_TOO_WEAK';
}
/** AWS IoT refused a CSR that passed our own checks. */
export class CsrRejectedError extends AppError {
  readonly code = 'CSR_REJECTED';
}

// --- claim rules ---------------------------------------------------------------------------------
export class ClaimTokenUnknownError extends AppError {
  readonly code = 'CLAIM_TOKEN_UNKNOWN';
}
export class ClaimExpiredError extends AppError {
  readonly code = 'CLAIM_TOKEN_EXPIRED';
}
export class ClaimRevokedError extends AppError {
  readonly code = 'CLAIM_TOKEN_REVOKED';
}
export class ClaimUsedUpError extends AppError {
  readonly code = 'CLAIM_TOKEN_USED_UP';
}
export class SerialNotAllowedError extends AppError {
  readonly code = 'SERIAL_NOT_ALLOWED';
}
export class ServerKeygenNotAllowedError extends AppError {
  readonly code = 'SERVER_KEYGEN_NOT_ALLOWED';
}

// --- device state --------------------------------------------------------------------------------
export class SerialAlreadyRegisteredError extends AppError {
  readonly code = 'SERIAL_ALREADY_REGISTERED';
}
export class RegistrationInProgressError extends AppError {
  readonly code = 'REGISTRATION_IN_PROGRESS';
}
/** Lost a race on the same claim or serial; the request may be retried. */
export class RegistrationConflictError extends AppError {
  readonly code = 'REGISTRATION_CONFLICT';
}
/** A thing of that name exists in AWS IoT but is not ours to reuse. */
export class ThingNameTakenError extends AppError {
  readonly code = 'THING_NAME_TAKEN';
}

/** The CSR's public key was already certified for another device: one key, one device. */
export class PublicKeyInUseError extends AppError {
  readonly code = 'PUBLIC_KEY_IN_USE';
}

// --- life after first boot (rotation, reset) ---------------------------------------------------
/** The device's proof of possession does not verify, or names no certificate of that device. */
export class DeviceProofInvalidError extends AppError {
  readonly code = 'DEVICE_PROOF_INVALID';
}
/** The proof's issued-at is outside the accepted window. */
export class DeviceProofExpiredError extends AppError {
  readonly code = 'DEVICE_PROOF_EXPIRED';
}
/** The proof's nonce was used before: a captured request replayed. */
export class DeviceProofReplayedError extends AppError {
  readonly code = 'DEVICE_PROOF_REPLAYED';
}
/** The device is not ACTIVE (not registered yet, decommissioned, reset): nothing to rotate. */
export class DeviceNotActiveError extends AppError {
  readonly code = 'DEVICE_NOT_ACTIVE';
}
/** Another rotation request (or an operator) is working on this device. */
export class RotationInProgressError extends AppError {
  readonly code = 'ROTATION_IN_PROGRESS';
}
/** A confirmation with no new certificate waiting for it. */
export class NoRotationPendingError extends AppError {
  readonly code = 'NO_ROTATION_PENDING';
}

// --- admin ---------------------------------------------------------------------------------------
export class DeviceNotFoundError extends AppError {
  readonly code = 'DEVICE_NOT_FOUND';
}
export class ClaimNotFoundError extends AppError {
  readonly code = 'CLAIM_NOT_FOUND';
}
export class BatchNotFoundError extends AppError {
  readonly code = 'BATCH_NOT_FOUND';
}
/** Claims cannot be added to a batch that was revoked. */
export class BatchRevokedError extends AppError {
  readonly code = 'BATCH_REVOKED';
}
/** A claims request with this Idempotency-Key already minted claims; their tokens cannot be shown again. */
export class IdempotencyKeyUsedError extends AppError {
  readonly code = 'IDEMPOTENCY_KEY_USED';
}
/** The first request with this Idempotency-Key is still running. */
export class IdempotencyKeyInProgressError extends AppError {
  readonly code = 'IDEMPOTENCY_KEY_IN_PROGRESS';
}
/** This Idempotency-Key came with a different request before. */
export class IdempotencyKeyMismatchError extends AppError {
  readonly code = 'IDEMPOTENCY_KEY_MISMATCH';
}

// --- AWS capacity --------------------------------------------------------------------------------
export class ThrottledError extends AppError {
  readonly code = 'THROTTLED';
}
export class ServiceUnavailableError extends AppError {
  readonly code = 'SERVICE_UNAVAILABLE';
}
