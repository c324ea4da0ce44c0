import { ServiceUnavailableError, ThrottledError } from '../errors.js';

const THROTTLING = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
]);
const UNAVAILABLE = new Set(['InternalServerError', 'ServiceUnavailable', 'TimeoutError']);

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
