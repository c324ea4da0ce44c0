import { CreateCertificateFromCsrCommand } from '@aws-sdk/client-iot';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkInvariants } from '../../sandbox/invariants.js';
import { buildCsr, keyPair } from '../../sandbox/pki/csr.js';
import { decommissionDevice } from '../../shared/admin/admin-service.js';
import { DynamoDbAdminStore } from '../../shared/admin/dynamodb-admin-store.js';
import { createLogger } from '../../shared/logger.js';
import { SWEEP_MIN_AGE_MS } from '../../shared/registration/reconcile.js';
import { KEYGEN_REISSUE_WINDOW_MS } from '../../shared/registration/register-device.js';
import { codeRejectedBy } from '../support/error-code.js';
import {
  certificateIds as allCertificateIds,
  certificateStatus,
  createWorld,
  failKeepingCertificate,
  POLICY,
  reconcileIn,
  registerIn,
  seedClaim,
  type World,
} from '../support/scenarios.js';

/**
 * The identity rules (docs/registration.md): one device, one identity, exactly once. Each test is a
 * reproduction of a take-over, a shared thing name or a lost certificate, through DynamoDB Local and
 * the IoT emulator.
 */
let world: World;

beforeAll(async () => {
  world = await createWorld(inject('dynamodbEndpoint'));
});
afterEach(() => {
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
});
afterAll(async () => {
  await world.close();
});

const certificateIds = () => allCertificateIds(world);

const statusOf = (certificateId: string) => certificateStatus(world, certificateId);

describe('holding a token another device holds or held', () => {
  it("cannot re-issue another device's certificate with a shared server-keygen token", async () => {
    const token = await seedClaim(world, { maxUses: 5, allowServerKeygen: true });
    const first = await registerIn(world, token, 'SN-KG-SHARED', undefined);

    const code = await codeRejectedBy(registerIn(world, token, 'SN-KG-SHARED', undefined));

    expect(code).toBe('SERIAL_ALREADY_REGISTERED');
    expect(await statusOf(first.body.certificateId)).toBe('ACTIVE');
    expect(await checkInvariants(world.stores)).toEqual([]);
  });

  it("cannot resume another device's failed registration with its own CSR on a shared token", async () => {
    const token = await seedClaim(world, { maxUses: 5 });
    const deviceCsr = buildCsr();
    world.emulator.behaviour.set({
      '*': { ratePerSecond: 0 },
      CreateCertificateFromCsr: { fault: { error: 'ServiceUnavailableException' } },
    });
    expect(await codeRejectedBy(registerIn(world, token, 'SN-CSR-SHARED', deviceCsr.pem))).toBe(
      'SERVICE_UNAVAILABLE',
    );
    world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });

    const intruder = await codeRejectedBy(registerIn(world, token, 'SN-CSR-SHARED', buildCsr().pem));
    expect(intruder).toBe('SERIAL_ALREADY_REGISTERED');
    const retry = await registerIn(world, token, 'SN-CSR-SHARED', deviceCsr.pem);

    expect(retry.status).toBe(201);
    expect(await checkInvariants(world.stores)).toEqual([]);
  });

  it('re-issues a server-generated key on a spent single-use token only within the documented window', async () => {
    const token = await seedClaim(world, { allowServerKeygen: true });
    const first = await registerIn(world, token, 'SN-KG-LATE', undefined);
    const late = new Date(Date.now() + KEYGEN_REISSUE_WINDOW_MS + 1_000);

    const code = await codeRejectedBy(registerIn(world, token, 'SN-KG-LATE', undefined, () => late));

    expect(code).toBe('SERIAL_ALREADY_REGISTERED');
    expect(await statusOf(first.body.certificateId)).toBe('ACTIVE');
  });

  it('refuses a public key already registered to another device', async () => {
    const keys = keyPair('ec-p256', true);
    await registerIn(world, await seedClaim(world), 'SN-KEY-1', buildCsr({ keys }).pem);

    const code = await codeRejectedBy(
      registerIn(world, await seedClaim(world), 'SN-KEY-2', buildCsr({ keys, commonName: 'x' }).pem),
    );

    expect(code).toBe('PUBLIC_KEY_IN_USE');
    expect(await world.inventory.getDevice('SN-KEY-2')).toBeUndefined();
  });
});

describe('a thing name is one device for life', () => {
  it('is never handed to another serial, even after its device is decommissioned', async () => {
    await registerIn(world, await seedClaim(world), 'P-1', buildCsr().pem);
    await decommissionDevice('P-1', {
      store: new DynamoDbAdminStore(world.stores.dynamo, world.stores.tables),
      iot: world.gateway,
      policyName: POLICY,
      defaultThingNamePrefix: '',
      logger: createLogger({}, 'error', () => {}),
    });
    const token = await seedClaim(world, { thingNamePrefix: 'P-' });

    const code = await codeRejectedBy(registerIn(world, token, '1', buildCsr().pem));

    expect(code).toBe('THING_NAME_TAKEN');
    expect(await world.inventory.getDevice('1')).toBeUndefined();
    expect(await checkInvariants(world.stores)).toEqual([]);
  });
});

describe('certificate bookkeeping', () => {
  it('records a certificate it could not delete, and the retry reuses it at once', async () => {
    const token = await seedClaim(world);
    const csr = buildCsr();
    const kept = await failKeepingCertificate(world, token, 'SN-KEEP', csr.pem);
    const leftover = await statusOf(kept);

    const retry = await registerIn(world, token, 'SN-KEEP', csr.pem);

    expect(leftover).toBe('INACTIVE');
    expect(retry.body.certificateId).toBe(kept);
    expect(await checkInvariants(world.stores)).toEqual([]);
  });

  it('deactivates a kept certificate whose re-activation by the retry landed but whose answer was lost', async () => {
    const token = await seedClaim(world);
    const csr = buildCsr();
    const kept = await failKeepingCertificate(world, token, 'SN-LOST-ACTIVATE', csr.pem);
    // The retry re-activates it; every answer is lost, so it rolls back.
    world.emulator.behaviour.set({
      '*': { ratePerSecond: 0 },
      UpdateCertificate: { fault: { error: 'ServiceUnavailableException', landed: true, times: 3 } },
    });

    const code = await codeRejectedBy(registerIn(world, token, 'SN-LOST-ACTIVATE', csr.pem));

    expect(kept).toEqual(expect.any(String));
    expect(code).toBe('SERVICE_UNAVAILABLE');
    expect(await statusOf(kept)).not.toBe('ACTIVE');
    world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
    expect(await checkInvariants(world.stores, { allowUnreferenced: true })).toEqual([]);
  });

  it('the reconciler retires a certificate an attempt created but never recorded', async () => {
    const token = await seedClaim(world);
    world.emulator.behaviour.set({
      '*': { ratePerSecond: 0 },
      CreateCertificateFromCsr: { fault: { error: 'InternalFailureException', nth: 1, landed: true } },
    });
    const before = await certificateIds();
    const registered = await registerIn(world, token, 'SN-ORPHAN', buildCsr().pem);
    world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
    const orphans = [...(await certificateIds())].filter(
      (id) => !before.has(id) && id !== registered.body.certificateId,
    );

    const report = await reconcileIn(world, new Date(Date.now() + SWEEP_MIN_AGE_MS + 1_000));

    expect(orphans).toHaveLength(1);
    expect(await statusOf(orphans[0] as string)).toBe('deleted');
    expect(report.certificatesRetired).toBe(1);
    expect(await statusOf(registered.body.certificateId)).toBe('ACTIVE');
    expect(await checkInvariants(world.stores)).toEqual([]);
  });

  it('the reconciler leaves a certificate it did not create alone', async () => {
    const foreign = await world.stores.iot.send(
      new CreateCertificateFromCsrCommand({ certificateSigningRequest: buildCsr().pem, setAsActive: true }),
    );

    await reconcileIn(world, new Date(Date.now() + SWEEP_MIN_AGE_MS + 1_000));

    expect(await statusOf(foreign.certificateId as string)).toBe('ACTIVE');
  });
});

describe('the DescribeEndpoint quota', () => {
  it('is not spent by a request whose token matches no claim', async () => {
    let lookups = 0;
    const counting = Object.assign(Object.create(world.gateway) as World['gateway'], {
      describeEndpoint: (type: Parameters<World['gateway']['describeEndpoint']>[0]) => {
        lookups++;
        return world.gateway.describeEndpoint(type);
      },
    });
    const unknown = `fpc_${'A'.repeat(43)}`;

    const code = await codeRejectedBy(
      registerIn({ ...world, gateway: counting }, unknown, 'SN-NOBODY', buildCsr().pem),
    );

    expect(code).toBe('CLAIM_TOKEN_UNKNOWN');
    expect(lookups).toBe(0);
  });
});
