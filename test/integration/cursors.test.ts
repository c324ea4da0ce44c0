import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AdminHandler, callAdmin, loadAdminHandler } from '../support/admin-handlers.js';
import { localInventory } from '../support/dynamodb.js';
import { codeRejectedBy } from '../support/error-code.js';

let createClaims: AdminHandler;
let listClaims: AdminHandler;
let listDevices: AdminHandler;

beforeAll(async () => {
  createClaims = await loadAdminHandler('claims-create');
  listClaims = await loadAdminHandler('claims-list');
  listDevices = await loadAdminHandler('devices-list');
});

const newBatch = () => `B-${randomUUID().slice(0, 8)}`;

/** A cursor as a client could forge one: any JSON, base64url-encoded like the real ones. */
const forged = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');

describe('pagination cursors (GET /claims, GET /devices, the reconciler)', () => {
  it('pages through a batch of claims with the cursor each page returns', async () => {
    const batchId = newBatch();
    await callAdmin(createClaims, 'POST /claims', { body: { batchId, count: 3, ttlSeconds: 3600 } });

    const first = await callAdmin(listClaims, 'GET /claims', { query: { batchId, limit: '2' } });
    const cursor = first.body.cursor as string;
    const second = await callAdmin(listClaims, 'GET /claims', { query: { batchId, limit: '2', cursor } });

    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
    expect([...(first.body.claims as unknown[]), ...(second.body.claims as unknown[])]).toHaveLength(3);
    expect(second.body.cursor).toBeUndefined();
  });

  const claimKey = { tokenHash: 'a'.repeat(64), batchId: 'B-forged', claimId: randomUUID() };
  it.each([
    ['an empty object', forged({})],
    ['the key of another index', forged({ serialNumber: 'SN-1', status: 'ACTIVE', updatedAt: '2026-11-28' })],
    ['a key with a missing attribute', forged({ tokenHash: claimKey.tokenHash, batchId: claimKey.batchId })],
    ['a key with an extra attribute', forged({ ...claimKey, usesLeft: '1' })],
    ['a key with a number where a string belongs', forged({ ...claimKey, tokenHash: 1 })],
    ['a key with an object value', forged({ ...claimKey, claimId: { S: 'x' } })],
    ['the right key shape for another batch', forged(claimKey)],
  ])('answers 400 INVALID_REQUEST to a forged claims cursor: %s', async (_name, cursor) => {
    const response = await callAdmin(listClaims, 'GET /claims', { query: { batchId: newBatch(), cursor } });

    expect(response.statusCode).toBe(400);
    expect(response.body.code).toBe('INVALID_REQUEST');
  });

  it.each([
    ['an empty object, by status', { status: 'ACTIVE' }, forged({})],
    ['an empty object, by batch', { batchId: 'B1' }, forged({})],
    ['a claims cursor, by status', { status: 'ACTIVE' }, forged(claimKey)],
    ['a by-batch cursor, by status', { status: 'ACTIVE' }, forged({ serialNumber: 'SN-1', batchId: 'B1' })],
    [
      'a by-status cursor, by batch',
      { batchId: 'B1' },
      forged({ serialNumber: 'SN-1', status: 'ACTIVE', updatedAt: '2026-11-28T12:00:00.000Z' }),
    ],
    [
      'the right key shape for another status',
      { status: 'ACTIVE' },
      forged({ serialNumber: 'SN-1', status: 'FAILED', updatedAt: '2026-11-28T12:00:00.000Z' }),
    ],
  ])('answers 400 INVALID_REQUEST to a forged devices cursor: %s', async (_name, query, cursor) => {
    const response = await callAdmin(listDevices, 'GET /devices', { query: { ...query, cursor } });

    expect(response.statusCode).toBe(400);
    expect(response.body.code).toBe('INVALID_REQUEST');
  });

  it('refuses a forged cursor in the reconciler listing as INVALID_REQUEST', async () => {
    const listing = localInventory().listForReconcile('PROVISIONING', new Date(), 10, forged({}));

    expect(await codeRejectedBy(listing)).toBe('INVALID_REQUEST');
  });
});
