import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { AppError, type ErrorCode } from '../errors.js';

interface ProblemType {
  status: number;
  title: string;
}

/** The one mapping from domain error codes to HTTP (RFC 9457 problem details). */
export const PROBLEM_TYPES: Record<ErrorCode, ProblemType> = {
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Content-Type must be application/json' },
  INVALID_JSON: { status: 400, title: 'The body is not valid JSON' },
  INVALID_REQUEST: { status: 400, title: 'The body does not match the request schema' },
  INVALID_SERIAL_NUMBER: { status: 400, title: 'The serial number cannot be used in a thing name' },
  INVALID_CLAIM_TOKEN: { status: 400, title: 'The claim token is not in the expected format' },
  THING_NAME_TOO_LONG: { status: 400, title: 'The thing name built from the serial number is too long' },
  CSR_MALFORMED: { status: 400, title: 'The CSR is not a PEM-encoded PKCS#10 request' },
  CSR_SIGNATURE_INVALID: { status: 400, title: 'The CSR signature does not verify' },
  CSR_SIGNATURE_ALGORITHM_UNSUPPORTED: { status: 400, title: 'The CSR signature algorithm is not supported' },
  CSR_KEY_UNSUPPORTED: { status: 400, title: 'The CSR key type is not supported by AWS IoT' },
  CSR_KEY_TOO_WEAK: { status: 400, title: 'The CSR key is too weak for AWS IoT' },
  CSR_REJECTED: { status: 400, title: 'AWS IoT rejected the CSR' },
  CLAIM_TOKEN_UNKNOWN: { status: 401, title: 'Unknown claim token' },
  CLAIM_TOKEN_EXPIRED: { status: 403, title: 'The claim token has expired' },
  CLAIM_TOKEN_REVOKED: { status: 403, title: 'The claim token has been revoked' },
  CLAIM_TOKEN_USED_UP: { status: 403, title: 'The claim token has no uses left' },
  SERIAL_NOT_ALLOWED: { status: 403, title: 'The claim token is bound to another serial number' },
  SERVER_KEYGEN_NOT_ALLOWED: {
    status: 403,
    title: "The claim token's batch does not allow server-side key generation",
  },
  SERIAL_ALREADY_REGISTERED: { status: 409, title: 'The serial number is registered under another identity' },
  REGISTRATION_IN_PROGRESS: { status: 409, title: 'A registration for this serial number is in progress' },
  REGISTRATION_CONFLICT: { status: 409, title: 'A concurrent request changed the claim or device; retry' },
  THING_NAME_TAKEN: { status: 409, title: 'This thing name belongs to another device' },
  PUBLIC_KEY_IN_USE: { status: 409, title: 'This public key is already registered to another device' },
  DEVICE_PROOF_INVALID: { status: 401, title: "The device's proof of possession does not verify" },
  DEVICE_PROOF_EXPIRED: { status: 401, title: "The device's proof is too old or from the future" },
  DEVICE_PROOF_REPLAYED: { status: 401, title: "The device's proof was used before" },
  DEVICE_NOT_ACTIVE: { status: 409, title: 'The device is not active' },
  ROTATION_IN_PROGRESS: { status: 409, title: 'A rotation for this device is in progress' },
  NO_ROTATION_PENDING: { status: 409, title: 'No new certificate is waiting for confirmation' },
  DEVICE_NOT_FOUND: { status: 404, title: 'No device has this serial number' },
  CLAIM_NOT_FOUND: { status: 404, title: 'No claim has this id' },
  BATCH_NOT_FOUND: { status: 404, title: 'No batch has this id' },
  BATCH_REVOKED: { status: 409, title: 'This batch was revoked' },
  IDEMPOTENCY_KEY_USED: {
    status: 409,
    title: 'A request with this Idempotency-Key already created claims; their tokens are not shown again',
  },
  IDEMPOTENCY_KEY_IN_PROGRESS: { status: 409, title: 'A request with this Idempotency-Key is in progress' },
  IDEMPOTENCY_KEY_MISMATCH: { status: 422, title: 'This Idempotency-Key was used for a different request' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The body is too large' },
  THROTTLED: { status: 429, title: 'Too many requests; retry later' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'A dependency is unavailable; retry later' },
  INTERNAL_ERROR: { status: 500, title: 'Internal error' },
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  instance?: string;
  requestId?: string;
  [extension: string]: unknown;
}

/**
 * Renders any thrown value as problem+json. Unknown errors become a bare 500 that names only the
 * request id: never a stack trace or an AWS message.
 */
export function problemResponse(error: unknown, requestId: string): APIGatewayProxyStructuredResultV2 {
  const known = error instanceof AppError ? error : undefined;
  const code: ErrorCode = known?.code ?? 'INTERNAL_ERROR';
  const { status, title } = PROBLEM_TYPES[code];
  const body: ProblemDocument = {
    ...known?.extensions,
    type: `urn:fleet-provisioning:problem:${code.toLowerCase().replaceAll('_', '-')}`,
    title,
    status,
    code,
    ...(known ? { detail: known.message } : {}),
    requestId,
  };
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE };
  if (known?.retryAfterSeconds !== undefined) headers['retry-after'] = String(known.retryAfterSeconds);
  return { statusCode: status, headers, body: JSON.stringify(body) };
}
