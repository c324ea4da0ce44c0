import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AdminHandler, loadAdminHandler } from '../support/admin-handlers.js';
import { adminRequestEvent, lambdaContext, parseResponse } from '../support/events.js';

let createClaims: AdminHandler;
let listClaims: AdminHandler;

beforeAll(async () => {
  createClaims = await loadAdminHandler('claims-create');
  listClaims = await loadAdminHandler('claims-list');
});

async function call(
  handler: AdminHandler,
  routeKey: string,
  request: Parameters<typeof adminRequestEvent>[1],
) {
  return parseResponse(await handler(adminRequestEvent(routeKey, request), lambdaContext));
}

const newBatch = () => `B-${randomUUID().slice(0, 8)}`;

describe('POST /claims', () => {
  it.each(['__proto__', 'constructor', 'prototype'])(
    'refuses a claim attribute named %s with 400 INVALID_REQUEST pointing at it, and mints nothing',
    async (name) => {
      const batchId = newBatch();
      const attributes: unknown = JSON.parse(`{"line":"L1",${JSON.stringify(name)}:"x"}`);

      const response = await call(createClaims, 'POST /claims', {
        body: { batchId, count: 1, ttlSeconds: 3600, attributes },
      });

      expect(response.statusCode).toBe(400);
      expect(response.body).toMatchObject({
        code: 'INVALID_REQUEST',
        errors: [{ pointer: `/attributes/${name}`, detail: expect.stringContaining('reserved') }],
      });
      expect((await call(listClaims, 'GET /claims', { query: { batchId } })).body).toEqual({ claims: [] });
    },
  );
});
