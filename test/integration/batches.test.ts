import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { checkInvariants } from '../../sandbox/invariants.js';
import { buildCsr } from '../../sandbox/pki/csr.js';
import {
  type AdminDeps,
  createClaims,
  decommissionDevice,
  getBatch,
  listBatches,
  revokeClaims,
} from '../../shared/admin/admin-service.js';
import { DynamoDbAdminStore } from '../../shared/admin/dynamodb-admin-store.js';
import { createLogger } from '../../shared/logger.js';
import { codeRejectedBy } from '../support/error-code.js';
import { createWorld, POLICY, registerIn, type World } from '../support/scenarios.js';

/** Batch items: one write revokes a batch of any size, and the counts follow every registration. */
let world: World;

beforeAll(async () => {
  world = await createWorld(inject('dynamodbEndpoint'));
});
afterAll(async () => {
  await world.close();
});

function admin(client = world.stores.dynamo, clock?: () => Date): AdminDeps {
  return {
    store: new DynamoDbAdminStore(client, world.stores.tables),
    iot: world.gateway,
    policyName: POLICY,
    defaultThingNamePrefix: '',
    logger: createLogger({}, 'error', () => {}),
    ...(clock ? { clock } : {}),
  };
}

/** A DynamoDB client that counts the requests it sends, by command. */
function countingClient() {
  const client = new DynamoDBClient({
    endpoint: inject('dynamodbEndpoint'),
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const sent: string[] = [];
  client.middlewareStack.add(
    (next, context) => (args) => {
      sent.push(context.commandName as string);
      return next(args);
    },
    { step: 'initialize', name: 'count' },
  );
  return { client, sent };
}

it('counts tokens issued and used and devices by status, as registrations and decommissions happen', async () => {
  const minted = await createClaims({ batchId: 'B-COUNT', count: 5, ttlSeconds: 3600 }, admin());
  const tokens = minted.claims.map((claim) => claim.token);
  await registerIn(world, tokens[0] as string, 'SN-COUNT-1', buildCsr().pem);
  await registerIn(world, tokens[1] as string, 'SN-COUNT-2', buildCsr().pem);
  world.emulator.behaviour.set({
    '*': { ratePerSecond: 0 },
    CreateThing: { fault: { error: 'ServiceUnavailableException' } },
  });
  await codeRejectedBy(registerIn(world, tokens[2] as string, 'SN-COUNT-3', buildCsr().pem));
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
  await decommissionDevice('SN-COUNT-2', admin());

  const batch = await getBatch('B-COUNT', admin());

  expect(batch).toMatchObject({
    batchId: 'B-COUNT',
    status: 'ACTIVE',
    claims: { issued: 5, used: 3, revoked: 0, expired: 0 },
    devices: { ACTIVE: 1, FAILED: 1, DECOMMISSIONED: 1 },
    firstRegistrationAt: expect.any(String),
    lastRegistrationAt: expect.any(String),
  });
  expect(await checkInvariants(world.stores)).toEqual([]);
});

it('revokes a batch in one write, whatever its size, and its unused tokens are refused at once', async () => {
  const minted = await createClaims({ batchId: 'B-REVOKE', count: 1000, ttlSeconds: 3600 }, admin());
  await registerIn(world, minted.claims[0]?.token as string, 'SN-REVOKE-1', buildCsr().pem);
  const { client, sent } = countingClient();

  const result = await revokeClaims({ batchId: 'B-REVOKE' }, admin(client));
  const refused = await codeRejectedBy(
    registerIn(world, minted.claims[1]?.token as string, 'SN-REVOKE-2', buildCsr().pem),
  );

  expect(sent).toEqual(['UpdateItemCommand']);
  expect(result).toEqual({ revoked: 999 });
  expect(refused).toBe('CLAIM_TOKEN_REVOKED');
  expect(await world.inventory.getDevice('SN-REVOKE-2')).toBeUndefined();
  expect(await getBatch('B-REVOKE', admin())).toMatchObject({
    status: 'REVOKED',
    claims: { issued: 1000, used: 1, revoked: 999, expired: 0 },
  });
});

it('refuses to mint into a revoked batch', async () => {
  await createClaims({ batchId: 'B-CLOSED', count: 1, ttlSeconds: 3600 }, admin());
  await revokeClaims({ batchId: 'B-CLOSED' }, admin());

  const minting = createClaims({ batchId: 'B-CLOSED', count: 1, ttlSeconds: 3600 }, admin());

  expect(await codeRejectedBy(minting)).toBe('BATCH_REVOKED');
});

it('counts unused tokens as expired once their expiry has passed, and one revoked alone as revoked', async () => {
  const minted = await createClaims({ batchId: 'B-EXPIRE', count: 3, ttlSeconds: 60 }, admin());
  await revokeClaims({ claimId: minted.claims[0]?.claimId as string }, admin());
  const later = () => new Date(Date.now() + 120_000);

  const batch = await getBatch('B-EXPIRE', admin(world.stores.dynamo, later));

  expect(batch.claims).toEqual({ issued: 3, used: 0, revoked: 1, expired: 2 });
});

it('lists batches with their counts, and answers 404 BATCH_NOT_FOUND for an unknown one', async () => {
  await createClaims({ batchId: 'B-LIST', count: 2, ttlSeconds: 3600 }, admin());

  const { batches } = await listBatches({ limit: 1000 }, admin());

  expect(batches.find((batch) => batch.batchId === 'B-LIST')).toMatchObject({ claims: { issued: 2 } });
  expect(await codeRejectedBy(getBatch('B-NOBODY', admin()))).toBe('BATCH_NOT_FOUND');
});
