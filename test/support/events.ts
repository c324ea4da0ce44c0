import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import registerEvent from '../../events/register.json' with { type: 'json' };
import type { JsonEvent } from '../../shared/http/http-route.js';

/**
 * events/register.json is a real HTTP API (payload v2) event for the route serverless.yml declares;
 * each call returns a fresh deep copy with the given body.
 */
export function registerRequestEvent(
  body: unknown,
  change: (event: APIGatewayProxyEventV2) => void = () => {},
): JsonEvent {
  const event: APIGatewayProxyEventV2 = structuredClone(registerEvent);
  event.body = typeof body === 'string' ? body : JSON.stringify(body);
  event.headers['content-length'] = String(Buffer.byteLength(event.body));
  change(event);
  return event as JsonEvent;
}

export const lambdaContext = {
  awsRequestId: 'test-request',
  functionName: 'fleet-provisioning-test-register',
  getRemainingTimeInMillis: () => 10_000,
} as Context;

export interface ParsedResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export function parseResponse(result: APIGatewayProxyStructuredResultV2): ParsedResponse {
  return {
    statusCode: result.statusCode ?? 0,
    headers: Object.fromEntries(
      Object.entries(result.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]),
    ),
    body: JSON.parse(result.body ?? 'null') as Record<string, unknown>,
  };
}
