import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { IoTClient, type IoTClientConfig } from '@aws-sdk/client-iot';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * The retry budget, chosen so that the slowest call still ends well inside the function's 29 s:
 * 3 attempts (standard mode: exponential backoff with jitter, throttling retried) of at most 3 s
 * each is under 10 s per call. A call that still fails is mapped to 429/503 with Retry-After, so a
 * throttling storm is pushed back to the devices instead of burning Lambda time.
 * See docs/reliability.md.
 */
export const RETRY = { maxAttempts: 3, connectionTimeoutMs: 1_000, requestTimeoutMs: 3_000 } as const;

function requestHandler() {
  return new NodeHttpHandler({
    connectionTimeout: RETRY.connectionTimeoutMs,
    requestTimeout: RETRY.requestTimeoutMs,
    // Without this the handler only logs a warning when the request timeout passes.
    throwOnRequestTimeout: true,
  });
}

export function iotClient(config: IoTClientConfig = {}): IoTClient {
  return new IoTClient({
    maxAttempts: RETRY.maxAttempts,
    retryMode: 'standard',
    requestHandler: requestHandler(),
    ...config,
  });
}

export function dynamoDbClient(config: DynamoDBClientConfig = {}): DynamoDBClient {
  return new DynamoDBClient({
    maxAttempts: RETRY.maxAttempts,
    retryMode: 'standard',
    requestHandler: requestHandler(),
    ...config,
  });
}
