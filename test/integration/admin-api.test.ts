import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createClaims as createClaimsWith } from '../../shared/admin/admin-service.js';
import { DynamoDbAdminStore } from '../../shared/admin/dynamodb-admin-store.js';
import { createLogger } from '../../shared/logger.js';
import { type AdminHandler, callAdmin, loadAdminHandler } from '../support/admin-handlers.js';
import { localDynamoDb } from '../support/dynamodb.js';
import { codeRejectedBy } from '../support/error-code.js';
import { RecordingIot } from '../support/recording-iot.js';
import { TEST_TABLES } from '../support/tables.js';

let createClaims: AdminHandler;
let listClaims: AdminHandler;

beforeAll(async () => {
  createClaims = await loadAdminHandler('claims-create');
  listClaims = await loadAdminHandler('claims-list');
});

const newBatch = () => `B-${randomUUID().slice(0, 8)}`;

describe('POST /claims', () => {
  it.each(['__proto__', 'constructor', 'prototype'])(
    'refuses a claim attribute named %s with 400 INVALID_REQUEST pointing at it, and mints nothing',
    async (name) => {
      const batchId = newBatch();
      const attributes: unknown = JSON.parse(`{"line":"L1",${JSON.stringify(name)}:"x"}`);

      const response = await callAdmin(createClaims, 'POST /claims', {
        body: { batchId, count: 1, ttlSeconds: 3600, attributes },
      });

      expect(response.statusCode).toBe(400);
      expect(response.body).toMatchObject({
        code: 'INVALID_REQUEST',
        errors: [{ pointer: `/attributes/${name}`, detail: expect.stringContaining('reserved') }],
      });
      expect((await callAdmin(listClaims, 'GET /claims', { query: { batchId } })).body).toEqual({
        claims: [],
      });
    },
  );

  it('refuses bound serial numbers whose thing name (prefix + serial) would exceed 128 characters, and mints nothing', async () => {
    const batchId = newBatch();
    const thingNamePrefix = 'P'.repeat(64);
    const serialNumbers = ['SN-1', 'S'.repeat(65), 'S'.repeat(64)];

    const response = await callAdmin(createClaims, 'POST /claims', {
      body: { batchId, serialNumbers, ttlSeconds: 3600, thingNamePrefix },
    });

    expect(response.statusCode).toBe(400);
    expect(response.body).toMatchObject({
      code: 'THING_NAME_TOO_LONG',
      errors: [{ pointer: '/serialNumbers/1', detail: expect.stringContaining('129 characters') }],
    });
    expect((await callAdmin(listClaims, 'GET /claims', { query: { batchId } })).body).toEqual({ claims: [] });
  });

  it("refuses a batch when the deployment's default prefix leaves no room for a serial number", async () => {
    const deps = {
      store: new DynamoDbAdminStore(localDynamoDb(), TEST_TABLES),
      iot: new RecordingIot(),
      policyName: 'device-policy',
      logger: createLogger({}, 'error', () => {}),
      defaultThingNamePrefix: 'P'.repeat(128),
    };

    const minting = createClaimsWith({ batchId: newBatch(), count: 1, ttlSeconds: 3600 }, deps);

    expect(await codeRejectedBy(minting)).toBe('THING_NAME_TOO_LONG');
  });

  it.each([
    ['a prefix outside it', { thingNamePrefix: 'other-' }, 'INVALID_REQUEST'],
    ['bound serials outside it', { serialNumbers: ['X-1'] }, 'INVALID_REQUEST'],
    ['a prefix inside it', { thingNamePrefix: 'acme-line3-' }, 'no error'],
    ['bound serials inside it', { thingNamePrefix: 'acme-', serialNumbers: ['X-1'] }, 'no error'],
  ])("checks a batch against the deployment's thing name pattern: %s", async (_what, batch, code) => {
    const deps = {
      store: new DynamoDbAdminStore(localDynamoDb(), TEST_TABLES),
      iot: new RecordingIot(),
      policyName: 'device-policy',
      logger: createLogger({}, 'error', () => {}),
      defaultThingNamePrefix: '',
      thingNamePattern: 'acme-*',
    };

    const minting = createClaimsWith({ batchId: newBatch(), ttlSeconds: 3600, count: 1, ...batch }, deps);

    expect(await codeRejectedBy(minting)).toBe(code);
  });
});
