import { ServiceUnavailableError, ThrottledError } from '../errors.js';

const THROTTLING = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
]);
/**
 * TransactionConflictException: a single write met a transaction in flight on the same item (a batch
 * item is shared by a whole batch). The SDK does not retry it; it passes in milliseconds.
 */
const UNAVAILABLE = new Set([
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'TransactionConflictException',
]);

/**
 * Maps DynamoDB capacity errors to the client-facing 429/503 with Retry-After; everything else
 * propagates. The one mapping for every DynamoDB call (the inventory and the admin store).
 */
export async function guardDynamoDb<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    if (THROTTLING.has(name))
      throw new ThrottledError('the inventory is throttling', { retryAfterSeconds: 1, cause: error });
    if (UNAVAILABLE.has(name))
      throw new ServiceUnavailableError('the inventory is unavailable', {
        retryAfterSeconds: 2,
        cause: error,
      });
    throw error;
  }
}

/** Runs a conditional write; false if its condition failed (the item was not as expected). */
export async function ifConditionHolds(send: () => Promise<unknown>): Promise<boolean> {
  try {
    await guardDynamoDb(send);
    return true;
  } catch (error) {
    if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return false;
    throw error;
  }
}
