import { AttachThingPrincipalCommand, ListAttachedPoliciesCommand } from '@aws-sdk/client-iot';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeEach, expect, inject, it } from 'vitest';
import { checkInvariants } from '../../sandbox/invariants.js';
import { buildCsr, keyPair } from '../../sandbox/pki/csr.js';
import { ServiceUnavailableError } from '../../shared/errors.js';
import type { Inventory } from '../../shared/inventory/inventory.js';
import { batchKey } from '../../shared/inventory/model.js';
import { LEASE_MS } from '../../shared/registration/register-device.js';
import { codeRejectedBy } from '../support/error-code.js';
import {
  certificateStatus,
  createWorld,
  dyingAtCommit,
  POLICY,
  reconcileIn,
  registerIn,
  seedClaim,
  type World,
} from '../support/scenarios.js';

/**
 * Reproductions from the attack on the four-round-trip saga (the commit sent beside the attachments,
 * certificates created ACTIVE, throttling pausing): each failed on the saga as first written.
 */
let world: World;

beforeEach(async () => {
  world = await createWorld(inject('dynamodbEndpoint'));
});
afterEach(async () => {
  await world.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const statusOf = (certificateId: string) => certificateStatus(world, certificateId);
const withInventory = (inventory: Inventory): World => ({ ...world, inventory: inventory as never });
const policiesOf = async (certificateArn: string) =>
  (await world.stores.iot.send(new ListAttachedPoliciesCommand({ target: certificateArn }))).policies?.map(
    (policy) => policy.policyName,
  );

it('never rolls back a commit that landed, even when its answer was lost and the re-read fails too', async () => {
  const token = await seedClaim(world);
  const csr = buildCsr();
  let committed = false;
  // The commit lands and its answer is lost; DynamoDB is still unavailable for what follows.
  const inventory: Inventory = Object.assign(Object.create(world.inventory) as Inventory, {
    complete: async (...args: Parameters<Inventory['complete']>) => {
      await world.inventory.complete(...args);
      committed = true;
      throw new ServiceUnavailableError('the answer was lost');
    },
    fence: async (...args: Parameters<Inventory['fence']>) => {
      if (committed) throw new ServiceUnavailableError('the inventory is unavailable');
      return world.inventory.fence(...args);
    },
  });

  const first = await codeRejectedBy(registerIn(withInventory(inventory), token, 'SN-F1', csr.pem));
  const record = await world.inventory.getDevice('SN-F1');
  const retry = await registerIn(world, token, 'SN-F1', csr.pem);

  expect(first).toBe('SERVICE_UNAVAILABLE');
  expect(record?.status).toBe('ACTIVE');
  expect(await statusOf(record?.certificateId as string)).toBe('ACTIVE');
  expect(retry).toMatchObject({ status: 200, body: { certificateId: record?.certificateId } });
  expect(await checkInvariants(world.stores)).toEqual([]);
}, 60_000);

it('rolls back a failed commit only once the record is fenced off, so that a late commit cannot land', async () => {
  const token = await seedClaim(world);
  let late: Promise<void> | undefined;
  // The commit's request is still on its way when the attempt gives up on it.
  const inventory: Inventory = Object.assign(Object.create(world.inventory) as Inventory, {
    complete: async (...args: Parameters<Inventory['complete']>) => {
      late = sleep(500).then(() => world.inventory.complete(...args));
      late.catch(() => undefined);
      throw new ServiceUnavailableError('the request timed out');
    },
  });

  const first = await codeRejectedBy(registerIn(withInventory(inventory), token, 'SN-LATE', buildCsr().pem));
  const lateOutcome = await (late as Promise<void>).then(
    () => 'landed',
    (error: Error) => error.name,
  );

  expect(first).toBe('SERVICE_UNAVAILABLE');
  expect(lateOutcome).toBe('RegistrationConflictError');
  expect((await world.inventory.getDevice('SN-LATE'))?.status).toBe('FAILED');
  expect(await checkInvariants(world.stores, { allowUnreferenced: true })).toEqual([]);
}, 60_000);

it('rolls back after a fence whose answer was lost (its retry found the lease already moved)', async () => {
  const token = await seedClaim(world);
  const inventory: Inventory = Object.assign(Object.create(world.inventory) as Inventory, {
    complete: async () => {
      throw new ServiceUnavailableError('the inventory is unavailable');
    },
    // The fence lands; the SDK's retry of it is refused, since the lease has moved.
    fence: async (...args: Parameters<Inventory['fence']>) => {
      await world.inventory.fence(...args);
      return false;
    },
  });

  const first = await codeRejectedBy(
    registerIn(withInventory(inventory), token, 'SN-FENCED', buildCsr().pem),
  );

  expect(first).toBe('SERVICE_UNAVAILABLE');
  expect((await world.inventory.getDevice('SN-FENCED'))?.status).toBe('FAILED');
  expect(await checkInvariants(world.stores, { allowUnreferenced: true })).toEqual([]);
}, 60_000);

it('replays a registration told to retry after its commit to a CSR newly signed with the same key', async () => {
  const token = await seedClaim(world);
  const keys = keyPair('ec-p256', true);
  world.emulator.behaviour.set({
    '*': { ratePerSecond: 0 },
    AttachPolicy: { fault: { error: 'ServiceUnavailableException' } },
  });
  const first = await codeRejectedBy(registerIn(world, token, 'SN-F2', buildCsr({ keys }).pem));
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });

  // ECDSA signatures are randomized: firmware that signs its CSR per request sends other bytes.
  const retry = await registerIn(world, token, 'SN-F2', buildCsr({ keys }).pem);

  expect(first).toBe('SERVICE_UNAVAILABLE');
  expect(retry.status).toBe(200);
  expect(await policiesOf(retry.body.certificateArn)).toEqual([POLICY]);
  expect(await world.inventory.getDevice('SN-F2')).not.toHaveProperty('attachmentsPending');
  expect(await checkInvariants(world.stores)).toEqual([]);
}, 60_000);

it('still refuses a CSR for another key on a finished registration', async () => {
  const token = await seedClaim(world);
  await registerIn(world, token, 'SN-OTHER-KEY', buildCsr().pem);

  expect(await codeRejectedBy(registerIn(world, token, 'SN-OTHER-KEY', buildCsr().pem))).toBe(
    'SERIAL_ALREADY_REGISTERED',
  );
});

it("drops an earlier certificate's attachmentsPending note when a server-generated key is re-issued", async () => {
  const token = await seedClaim(world, { allowServerKeygen: true });
  world.emulator.behaviour.set({
    '*': { ratePerSecond: 0 },
    AttachPolicy: { fault: { error: 'ServiceUnavailableException' } },
  });
  const first = await codeRejectedBy(registerIn(world, token, 'SN-F3', undefined));
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });

  const reissue = await registerIn(world, token, 'SN-F3', undefined);

  expect(first).toBe('SERVICE_UNAVAILABLE');
  expect(reissue.status).toBe(201);
  expect(await world.inventory.getDevice('SN-F3')).not.toHaveProperty('attachmentsPending');
}, 60_000);

it("leaves another device's certificate alone when it finds it on a stale record's thing", async () => {
  const y = await registerIn(world, await seedClaim(world), 'SN-Y', buildCsr().pem);
  const tokenX = await seedClaim(world);
  void registerIn(withInventory(dyingAtCommit(world.inventory)), tokenX, 'SN-X', buildCsr().pem);
  for (let i = 0; i < 60 && !(await world.gateway.thingPrincipals('SN-X')).length; i++) await sleep(50);
  // Y's certificate also attached to X's thing, by an operator or another tool.
  await world.stores.iot.send(
    new AttachThingPrincipalCommand({ thingName: 'SN-X', principal: y.body.certificateArn }),
  );

  // The checker sees it: only X's own certificate may be on X's thing.
  const violations = await checkInvariants(world.stores, { allowStale: true, allowUnreferenced: true });

  const report = await reconcileIn(world, new Date(Date.now() + LEASE_MS + 1_000));

  expect(violations).toEqual([`thing SN-X has a certificate that is not SN-X's: ${y.body.certificateArn}`]);
  expect(await statusOf(y.body.certificateId)).toBe('ACTIVE');
  // X's thing cannot go while Y's certificate is on it: left for an operator, and said so.
  expect(report.incomplete).toBe(1);
}, 60_000);

it("keeps the batch's counts through a pause, the reconciler's rollback, the resume and a replay", async () => {
  const token = await seedClaim(world);
  const csr = buildCsr();
  const counts = async () => {
    const out = await DynamoDBDocumentClient.from(world.stores.dynamo).send(
      new GetCommand({ TableName: world.stores.tables.claims, Key: { tokenHash: batchKey('FAULTS') } }),
    );
    return { active: out.Item?.['devices@ACTIVE'] ?? 0, failed: out.Item?.['devices@FAILED'] ?? 0 };
  };
  world.emulator.behaviour.set({
    '*': { ratePerSecond: 0 },
    CreateThing: { ratePerSecond: 0.001, burst: 0.5 },
  });
  const first = await codeRejectedBy(registerIn(world, token, 'SN-C', csr.pem));
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
  const later = new Date(Date.now() + LEASE_MS + 1_000);
  const reconciled = await reconcileIn(world, later);
  const afterReconcile = await counts();
  const resumed = await registerIn(world, token, 'SN-C', csr.pem, () => later);
  const replay = await registerIn(world, token, 'SN-C', csr.pem, () => later);

  expect(first).toBe('THROTTLED');
  expect(reconciled.rolledBack).toBe(1);
  expect(afterReconcile).toEqual({ active: 0, failed: 1 });
  expect([resumed.status, replay.status]).toEqual([201, 200]);
  expect(await counts()).toEqual({ active: 1, failed: 0 });
  expect(await checkInvariants(world.stores, { now: later })).toEqual([]);
}, 90_000);
