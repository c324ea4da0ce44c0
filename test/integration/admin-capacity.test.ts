import { InternalServerError, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AdminHandler, loadAdminHandler } from '../support/admin-handlers.js';
import { type AdminRequest, adminRequestEvent, lambdaContext, parseResponse } from '../support/events.js';

// DynamoDB Local cannot be made to throttle or fail: the admin functions' document clients are
// stubbed on the class (they are built at module load), and reset after each test.
const dynamo = mockClient(DynamoDBDocumentClient);
afterEach(() => {
  dynamo.reset();
});
afterAll(() => {
  dynamo.restore();
});

type Route = [routeKey: string, name: Parameters<typeof loadAdminHandler>[0], request: AdminRequest];
const ROUTES: Route[] = [
  ['POST /claims', 'claims-create', { body: { batchId: 'B1', count: 2, ttlSeconds: 3600 } }],
  ['GET /claims', 'claims-list', { query: { batchId: 'B1' } }],
  ['POST /claims/revoke', 'claims-revoke', { body: { claimId: 'c-1' } }],
  ['GET /devices/{serialNumber}', 'devices-get', { path: { serialNumber: 'SN-1' } }],
  ['GET /devices', 'devices-list', { query: { status: 'ACTIVE' } }],
  ['POST /devices/{serialNumber}/decommission', 'devices-decommission', { path: { serialNumber: 'SN-1' } }],
];
const handlers = new Map<string, AdminHandler>();
beforeAll(async () => {
  for (const [routeKey, name] of ROUTES) handlers.set(routeKey, await loadAdminHandler(name));
});

async function call(routeKey: string, request: AdminRequest) {
  const handler = handlers.get(routeKey);
  if (!handler) throw new Error(`no handler for ${routeKey}`);
  return parseResponse(await handler(adminRequestEvent(routeKey, request), lambdaContext));
}

describe('admin routes when DynamoDB throttles or fails', () => {
  it.each(ROUTES)(
    '%s answers 429 THROTTLED with Retry-After to throttling',
    async (routeKey, _name, request) => {
      dynamo
        .onAnyCommand()
        .rejects(new ProvisionedThroughputExceededException({ message: 'Rate exceeded', $metadata: {} }));

      const response = await call(routeKey, request);

      expect(response.statusCode).toBe(429);
      expect(response.body.code).toBe('THROTTLED');
      expect(response.headers['retry-after']).toEqual(expect.stringMatching(/^\d+$/));
    },
  );

  it.each(ROUTES)(
    '%s answers 503 SERVICE_UNAVAILABLE with Retry-After to an internal server error',
    async (routeKey, _name, request) => {
      dynamo
        .onAnyCommand()
        .rejects(new InternalServerError({ message: 'Internal server error', $metadata: {} }));

      const response = await call(routeKey, request);

      expect(response.statusCode).toBe(503);
      expect(response.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(response.headers['retry-after']).toEqual(expect.stringMatching(/^\d+$/));
    },
  );
});
