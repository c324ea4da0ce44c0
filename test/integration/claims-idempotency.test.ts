import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbAdminStore } from '../../shared/admin/dynamodb-admin-store.js';
import { PENDING_STALE_MS, requestFingerprint } from '../../shared/admin/idempotency.js';
import { type AdminHandler, loadAdminHandler } from '../support/admin-handlers.js';
import { localDynamoDb } from '../support/dynamodb.js';
import { adminRequestEvent, lambdaContext, parseResponse } from '../support/events.js';
import { TEST_TABLES } from '../support/tables.js';

let createClaims: AdminHandler;
let listClaims: AdminHandler;

beforeAll(async () => {
  createClaims = await loadAdminHandler('claims-create');
  listClaims = await loadAdminHandler('claims-list');
});

const newBatch = () => `I-${randomUUID().slice(0, 8)}`;

async function create(body: unknown, idempotencyKey?: string) {
  const event = adminRequestEvent('POST /claims', { body });
  if (idempotencyKey !== undefined) event.headers['idempotency-key'] = idempotencyKey;
  return parseResponse(await createClaims(event, lambdaContext));
}

async function claimIdsOf(batchId: string): Promise<string[]> {
  const response = await parseResponse(
    await listClaims(adminRequestEvent('GET /claims', { query: { batchId, limit: '1000' } }), lambdaContext),
  );
  return (response.body as { claims: { claimId: string }[] }).claims.map((claim) => claim.claimId).sort();
}

describe('POST /claims with an Idempotency-Key', () => {
  it('refuses a repeat with 409 IDEMPOTENCY_KEY_USED and the claim ids the first request minted, minting nothing', async () => {
    const batchId = newBatch();
    const body = { batchId, count: 3, ttlSeconds: 3600 };
    const key = randomUUID();

    const first = await create(body, key);
    const repeat = await create(body, key);

    const minted = (first.body as { claims: { claimId: string }[] }).claims.map((claim) => claim.claimId);
    expect(first.statusCode).toBe(201);
    expect(repeat.statusCode).toBe(409);
    expect(repeat.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_USED', batchId, claimIds: minted });
    expect(await claimIdsOf(batchId)).toEqual([...minted].sort());
  });

  it('refuses the key with 422 IDEMPOTENCY_KEY_MISMATCH when it comes with another request', async () => {
    const batchId = newBatch();
    const key = randomUUID();
    await create({ batchId, count: 1, ttlSeconds: 3600 }, key);

    const other = await create({ batchId, count: 2, ttlSeconds: 3600 }, key);

    expect(other.statusCode).toBe(422);
    expect(other.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_MISMATCH' });
    expect(await claimIdsOf(batchId)).toHaveLength(1);
  });

  it('answers 409 IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After while the first request may still be running', async () => {
    const batchId = newBatch();
    const body = { batchId, count: 1, ttlSeconds: 3600 };
    const key = randomUUID();
    const store = new DynamoDbAdminStore(localDynamoDb(), TEST_TABLES);
    await store.reserveClaimsRequest({
      idempotencyKey: key,
      batchId,
      fingerprint: requestFingerprint(body),
      claimIds: ['c-1'],
      state: 'PENDING',
      createdAt: new Date().toISOString(),
      purgeAt: Math.floor(Date.now() / 1000) + 3600,
    });

    const repeat = await create(body, key);

    expect(repeat.statusCode).toBe(409);
    expect(repeat.headers?.['retry-after']).toBe('2');
    expect(repeat.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_PROGRESS' });
    expect(await claimIdsOf(batchId)).toEqual([]);
  });

  it('answers a repeat of a request that died midway as used, with the claim ids it may have written', async () => {
    const batchId = newBatch();
    const body = { batchId, count: 1, ttlSeconds: 3600 };
    const key = randomUUID();
    const store = new DynamoDbAdminStore(localDynamoDb(), TEST_TABLES);
    await store.reserveClaimsRequest({
      idempotencyKey: key,
      batchId,
      fingerprint: requestFingerprint(body),
      claimIds: ['c-1'],
      state: 'PENDING',
      createdAt: new Date(Date.now() - PENDING_STALE_MS - 1000).toISOString(),
      purgeAt: Math.floor(Date.now() / 1000) + 3600,
    });

    const repeat = await create(body, key);

    expect(repeat.statusCode).toBe(409);
    expect(repeat.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_USED', claimIds: ['c-1'] });
  });

  it('refuses a malformed key with 400 INVALID_REQUEST, minting nothing', async () => {
    const batchId = newBatch();

    const response = await create({ batchId, count: 1, ttlSeconds: 3600 }, 'not a key!');

    expect(response.statusCode).toBe(400);
    expect(response.body).toMatchObject({
      code: 'INVALID_REQUEST',
      detail: expect.stringMatching(/Idempotency-Key/),
    });
    expect(await claimIdsOf(batchId)).toEqual([]);
  });

  it('keeps minting anew without a key, as before', async () => {
    const batchId = newBatch();
    const body = { batchId, count: 1, ttlSeconds: 3600 };

    const responses = [await create(body), await create(body)];

    expect(responses.map((response) => response.statusCode)).toEqual([201, 201]);
    expect(await claimIdsOf(batchId)).toHaveLength(2);
  });
});
