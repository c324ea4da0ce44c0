import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import adminEvent from '../../events/admin.json' with { type: 'json' };
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

export interface AdminRequest {
  /** Values of the route's `{placeholders}`. */
  path?: Record<string, string>;
  query?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
}

/**
 * events/admin.json is a real SigV4-signed (AWS_IAM) HTTP API event for GET /claims; each call
 * returns a fresh deep copy turned into a request for the given admin route, e.g.
 * `adminRequestEvent('GET /devices', { query: { status: 'ACTIVE' } })`.
 */
export function adminRequestEvent(routeKey: string, request: AdminRequest = {}): JsonEvent {
  const [method = 'GET', route = '/'] = routeKey.split(' ');
  const event: APIGatewayProxyEventV2 = structuredClone(adminEvent);
  const path = route.replace(/\{(\w+)\}/g, (_, name: string) =>
    encodeURIComponent(request.path?.[name] ?? ''),
  );
  event.routeKey = routeKey;
  event.requestContext.routeKey = routeKey;
  event.rawPath = path;
  event.requestContext.http.path = path;
  event.requestContext.http.method = method;
  event.rawQueryString = new URLSearchParams(request.query).toString();
  if (request.query) event.queryStringParameters = { ...request.query };
  else delete event.queryStringParameters;
  if (request.path) event.pathParameters = { ...request.path };
  if (request.body !== undefined) {
    event.body = JSON.stringify(request.body);
    event.headers['content-type'] = 'application/json';
    event.headers['content-length'] = String(Buffer.byteLength(event.body));
  }
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
