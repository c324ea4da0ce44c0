import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateThingCommand,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { afterEach, beforeEach, expect, inject, it } from 'vitest';
import { checkInvariants } from '../../sandbox/invariants.js';
import { buildCsr, keyPair } from '../../sandbox/pki/csr.js';
import { createClaims, decommissionDevice } from '../../shared/admin/admin-service.js';
import { DynamoDbAdminStore } from '../../shared/admin/dynamodb-admin-store.js';
import { DynamoDbInventory } from '../../shared/inventory/dynamodb-inventory.js';
import { createLogger } from '../../shared/logger.js';
import { reconcile, SWEEP_MIN_AGE_MS } from '../../shared/registration/reconcile.js';
import { LEASE_MS } from '../../shared/registration/register-device.js';
import { codeRejectedBy } from '../support/error-code.js';
import {
  certificateIds as allCertificateIds,
  certificateStatus,
  createWorld,
  dyingAtCommit,
  failKeepingCertificate,
  POLICY,
  reconcileIn,
  registerIn,
  seedClaim,
  type World,
} from '../support/scenarios.js';

/**
 * Attacks and faults found against the identity rules after they were first built, each kept as the
 * regression test of its fix (one fresh world per test: the sweep looks at every certificate).
 */
const silent = createLogger({}, 'error', () => {});
let world: World;

beforeEach(async () => {
  world = await createWorld(inject('dynamodbEndpoint'));
});
afterEach(async () => {
  await world.close();
});

const statusOf = (certificateId: string) => certificateStatus(world, certificateId);
const certificateIds = () => allCertificateIds(world);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const admin = () => ({
  store: new DynamoDbAdminStore(world.stores.dynamo, world.stores.tables),
  iot: world.gateway,
  policyName: POLICY,
  defaultThingNamePrefix: '',
  logger: silent,
});

/** The inventory over a client that loses the answer of the first write matching `matches` (it lands). */
function inventoryLosingAnswer(matches: (command: string, input: Record<string, unknown>) => boolean) {
  const client = new DynamoDBClient({
    endpoint: inject('dynamodbEndpoint'),
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 3,
    retryMode: 'standard',
  });
  let lost = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (lost === 0 && matches(context.commandName as string, args.input as Record<string, unknown>)) {
        lost++;
        await next(args);
        const error = new Error('the answer was lost');
        error.name = 'TimeoutError';
        throw error;
      }
      return next(args);
    },
    { step: 'deserialize', name: 'loseOneAnswer' },
  );
  return { inventory: new DynamoDbInventory(client, world.stores.tables), lostCount: () => lost };
}

it("reserves a bound serial's thing name when its claim is minted, so another batch's serial cannot spell it first", async () => {
  const minted = await createClaims(
    { batchId: 'B-VICTIM', ttlSeconds: 3600, serialNumbers: ['X'], thingNamePrefix: 'SN-' },
    admin(),
  );
  const attackerToken = await seedClaim(world);

  const attacker = await codeRejectedBy(registerIn(world, attackerToken, 'SN-X', buildCsr().pem));
  const victim = await registerIn(world, minted.claims[0]?.token as string, 'X', buildCsr().pem);

  expect(attacker).toBe('THING_NAME_TAKEN');
  expect(victim.body.thingName).toBe('SN-X');
  expect(await checkInvariants(world.stores)).toEqual([]);
});

it('completes a registration whose final write landed but whose answer was lost', async () => {
  const token = await seedClaim(world);
  const csr = buildCsr();
  const { inventory, lostCount } = inventoryLosingAnswer(
    (command, input) =>
      command === 'TransactWriteItemsCommand' && JSON.stringify(input).includes('activatedAt'),
  );

  const result = await registerIn({ ...world, inventory }, token, 'SN-LOST-ACTIVE', csr.pem);

  expect(lostCount()).toBe(1);
  expect(result.status).toBe(201);
  expect(await statusOf(result.body.certificateId)).toBe('ACTIVE');
  expect(await checkInvariants(world.stores)).toEqual([]);
});

it('keeps a device retry out while the reconciler still works on its record, then lets it finish', async () => {
  const token = await seedClaim(world);
  const csr = buildCsr();
  void registerIn({ ...world, inventory: dyingAtCommit(world.inventory) as never }, token, 'SN-R', csr.pem);
  await sleep(1_500);
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 }, DetachPolicy: { latencyMs: 2_000 } });
  const t1 = new Date(Date.now() + LEASE_MS + 1_000);
  const reconciler = reconcileIn(world, t1);
  await sleep(300);

  // Past the saga's lease, but within the reconciler's own.
  const t2 = new Date(t1.getTime() + LEASE_MS + 1_000);
  const during = await codeRejectedBy(registerIn(world, token, 'SN-R', csr.pem, () => t2));
  await reconciler;
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
  const after = await registerIn(world, token, 'SN-R', csr.pem, () => t2);

  expect(during).toBe('REGISTRATION_IN_PROGRESS');
  expect(after.status).toBe(201);
  expect(await statusOf(after.body.certificateId)).toBe('ACTIVE');
  expect(await checkInvariants(world.stores, { now: t2 })).toEqual([]);
}, 60_000);

it('refuses a batch of multi-use claims with server-side key generation', async () => {
  const minting = createClaims(
    { batchId: 'B-KG', ttlSeconds: 3600, count: 10, maxUses: 10, allowServerKeygen: true },
    admin(),
  );

  expect(await codeRejectedBy(minting)).toBe('INVALID_REQUEST');
});

it('measures the re-issue window from the first completion: re-issuing does not slide it', async () => {
  const token = await seedClaim(world, { allowServerKeygen: true });
  const t0 = Date.now();
  const at = (minutes: number) => () => new Date(t0 + minutes * 60_000);
  await registerIn(world, token, 'SN-SLIDE', undefined, at(0));
  const second = await registerIn(world, token, 'SN-SLIDE', undefined, at(9));

  const third = await codeRejectedBy(registerIn(world, token, 'SN-SLIDE', undefined, at(18)));

  expect(third).toBe('SERIAL_ALREADY_REGISTERED');
  expect(await statusOf(second.body.certificateId)).toBe('ACTIVE');
});

it('lets a device whose CSR AWS IoT refused come back with another key', async () => {
  const token = await seedClaim(world);
  world.emulator.behaviour.set({
    '*': { ratePerSecond: 0 },
    CreateCertificateFromCsr: { fault: { error: 'InvalidRequestException' } },
  });
  const first = await codeRejectedBy(registerIn(world, token, 'SN-REFUSED', buildCsr().pem));
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });

  const fixed = await registerIn(world, token, 'SN-REFUSED', buildCsr().pem);

  expect(first).toBe('CSR_REJECTED');
  expect(fixed.status).toBe(201);
  expect(await checkInvariants(world.stores)).toEqual([]);
});

it('retires the ACTIVE, attached certificate of an attempt that died before its commit, once the retry has replaced it', async () => {
  const token = await seedClaim(world);
  const keys = keyPair('ec-p256', true);
  const before = await certificateIds();
  void registerIn(
    { ...world, inventory: dyingAtCommit(world.inventory) as never },
    token,
    'SN-STALE',
    buildCsr({ keys }).pem,
  );
  await sleep(1_500);
  const unrecorded = [...(await certificateIds())].filter((id) => !before.has(id));
  const later = () => new Date(Date.now() + LEASE_MS + 1_000);

  const retry = await registerIn(
    world,
    token,
    'SN-STALE',
    buildCsr({ keys, commonName: 'again' }).pem,
    later,
  );
  const report = await reconcileIn(world, new Date(Date.now() + SWEEP_MIN_AGE_MS + 1_000));

  expect(unrecorded).toHaveLength(1);
  expect(retry.status).toBe(201);
  expect(report.certificatesRetired).toBe(1);
  expect(await statusOf(unrecorded[0] as string)).toBe('deleted');
  expect(await statusOf(retry.body.certificateId)).toBe('ACTIVE');
  expect(await checkInvariants(world.stores)).toEqual([]);
}, 60_000);

it('sweeps certificates even when its device passes are cut short by a backlog', async () => {
  world.emulator.behaviour.set({
    '*': { ratePerSecond: 0 },
    CreateCertificateFromCsr: { fault: { error: 'ServiceUnavailableException' } },
    DeleteThing: { fault: { error: 'InternalFailureException' } },
  });
  for (const serial of ['SN-STUCK-1', 'SN-STUCK-2']) {
    await codeRejectedBy(registerIn(world, await seedClaim(world), serial, buildCsr().pem));
  }
  world.emulator.behaviour.set({
    '*': { ratePerSecond: 0 },
    CreateCertificateFromCsr: { fault: { error: 'InternalFailureException', nth: 1, landed: true } },
    DeleteThing: { fault: { error: 'InternalFailureException' } },
  });
  await registerIn(world, await seedClaim(world), 'SN-ORPHANED', buildCsr().pem);
  world.emulator.behaviour.set({
    '*': { ratePerSecond: 0 },
    DeleteThing: { fault: { error: 'InternalFailureException' } },
  });

  const report = await reconcile({
    inventory: world.inventory,
    rotations: world.rotations,
    iot: world.gateway,
    policyName: POLICY,
    logger: silent,
    clock: () => new Date(Date.now() + SWEEP_MIN_AGE_MS + 1_000),
    staleAfterMs: 0,
    maxDevices: 1,
  });

  expect(report).toMatchObject({ examined: 1, truncated: true, certificatesRetired: 1 });
}, 60_000);

it("leaves alone a certificate for a device's key that is in use on another thing", async () => {
  const keys = keyPair('ec-p256', true);
  const registered = await registerIn(world, await seedClaim(world), 'SN-OWNER', buildCsr({ keys }).pem);
  const foreign = await world.stores.iot.send(
    new CreateCertificateFromCsrCommand({
      certificateSigningRequest: buildCsr({ keys, commonName: 'ops' }).pem,
      setAsActive: true,
    }),
  );
  await world.stores.iot.send(new CreateThingCommand({ thingName: 'ops-thing' }));
  await world.stores.iot.send(
    new AttachThingPrincipalCommand({ thingName: 'ops-thing', principal: foreign.certificateArn }),
  );

  await reconcileIn(world, new Date(Date.now() + SWEEP_MIN_AGE_MS + 1_000));

  expect(await statusOf(registered.body.certificateId)).toBe('ACTIVE');
  expect(await statusOf(foreign.certificateId as string)).toBe('ACTIVE');
});

it('keeps a resumed registration out while an operator decommissions the device, which ends DECOMMISSIONED', async () => {
  const token = await seedClaim(world);
  const csr = buildCsr();
  // A FAILED record that keeps its certificate (it could not be deleted): the resume would reuse it.
  await failKeepingCertificate(world, token, 'SN-DECOM', csr.pem);
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 }, UpdateCertificate: { latencyMs: 1_500 } });
  const decommission = decommissionDevice('SN-DECOM', admin());
  await sleep(300);

  const resume = await codeRejectedBy(registerIn(world, token, 'SN-DECOM', csr.pem));
  const decommissioned = await decommission;

  expect(resume).toBe('REGISTRATION_IN_PROGRESS');
  expect(decommissioned.status).toBe('DECOMMISSIONED');
  expect(await codeRejectedBy(registerIn(world, token, 'SN-DECOM', csr.pem))).toBe(
    'SERIAL_ALREADY_REGISTERED',
  );
  expect(await checkInvariants(world.stores)).toEqual([]);
}, 30_000);

it('issues a new certificate when the one its failed attempt kept was revoked meanwhile, and the sweep retires the old', async () => {
  const token = await seedClaim(world);
  const csr = buildCsr();
  const kept = await failKeepingCertificate(world, token, 'SN-REVOKED', csr.pem);
  await world.stores.iot.send(new UpdateCertificateCommand({ certificateId: kept, newStatus: 'REVOKED' }));

  const retry = await registerIn(world, token, 'SN-REVOKED', csr.pem);
  const report = await reconcileIn(world, new Date(Date.now() + SWEEP_MIN_AGE_MS + 1_000));

  expect(retry.status).toBe(201);
  expect(retry.body.certificateId).not.toBe(kept);
  expect(report.certificatesRetired).toBe(1);
  expect(await statusOf(kept)).toBe('deleted');
  expect(await checkInvariants(world.stores)).toEqual([]);
}, 60_000);
