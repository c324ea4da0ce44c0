import { InvalidRequestError } from '../errors.js';

/**
 * The attributes of a LastEvaluatedKey from each index we page through: the table's key plus the
 * index's (serverless.yml). All are strings.
 */
export const CURSOR_KEYS = {
  claimsByBatch: ['tokenHash', 'batchId', 'claimId'],
  batchesByKind: ['tokenHash', 'kind', 'batchId'],
  devicesByBatch: ['serialNumber', 'batchId'],
  devicesByStatus: ['serialNumber', 'status', 'updatedAt'],
  devicesByRotation: ['serialNumber', 'rotationState', 'rotationDueAt'],
  history: ['serialNumber', 'eventKey'],
} as const satisfies Record<string, readonly string[]>;

/** Opaque pagination cursors: a DynamoDB LastEvaluatedKey as base64url JSON. */
export function encodeCursor(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;
}

/**
 * The ExclusiveStartKey a cursor stands for, refused unless it has exactly the given key attributes,
 * each a non-empty string: anything else was not returned by this API, and DynamoDB would answer it
 * with a ValidationException.
 */
export function decodeCursor(
  cursor: string | undefined,
  keys: readonly string[],
): Record<string, string> | undefined {
  if (!cursor) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw cursorRefused();
  }
  if (typeof key !== 'object' || key === null || Array.isArray(key)) throw cursorRefused();
  const start: Record<string, string> = {};
  for (const [name, value] of Object.entries(key)) {
    if (!keys.includes(name) || typeof value !== 'string' || value === '') throw cursorRefused();
    start[name] = value;
  }
  if (Object.keys(start).length !== keys.length) throw cursorRefused();
  return start;
}

/** The 400 for a cursor this API did not return (or one DynamoDB refused as a start key). */
export function cursorRefused(cause?: unknown): InvalidRequestError {
  return new InvalidRequestError('cursor is not one this API returned', {
    extensions: { errors: [{ pointer: '/cursor', detail: 'pass back the cursor of the previous page' }] },
    cause,
  });
}
