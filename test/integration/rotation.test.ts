import type { KeyObject } from 'node:crypto';
import { ListThingPrincipalsCommand } from '@aws-sdk/client-iot';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkInvariants } from '../../sandbox/invariants.js';
import { buildCsr } from '../../sandbox/pki/csr.js';
import {
  decommissionDevice,
  deviceHistory,
  getDevice,
  requestBatchRotation,
  requestDeviceRotation,
  resetDevice,
} from '../../shared/admin/admin-service.js';
import { checkRotation, confirmRotation, startRotation } from '../../shared/lifecycle/rotate-device.js';
import { codeRejectedBy } from '../support/error-code.js';
import { proof } from '../support/proofs.js';
import {
  adminDepsIn,
  certificateIds,
  certificateStatus,
  createWorld,
  type RegisteredDevice,
  reconcileIn,
  registeredIn,
  registerIn,
  rotationDepsIn,
  seedClaim,
  type World,
} from '../support/scenarios.js';

/**
 * Life after first boot (docs/lifecycle.md) through DynamoDB Local and the IoT emulator: rotation in
 * two phases authenticated by the device's key, reset after repair, and the history of it all.
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

const OPERATOR = 'arn:aws:sts::123456789012:assumed-role/fleet-line-operator/alice';
const admin = () => adminDepsIn(world);

type Device = RegisteredDevice;

const registered = (serialNumber: string) => registeredIn(world, serialNumber);

/** Phase one as the device does it: a new key, a CSR, a proof signed with the current key. */
async function rotate(device: Device, newKey = buildCsr()) {
  const signed = await proof(device.key, device.certificatePem, {
    action: 'rotate',
    serialNumber: device.serialNumber,
    csr: newKey.pem,
  });
  const result = await startRotation(signed, rotationDepsIn(world));
  return { ...result, newKey, signed };
}

async function confirm(device: Device, key: KeyObject, certificatePem: string) {
  return confirmRotation(
    await proof(key, certificatePem, { action: 'confirm', serialNumber: device.serialNumber }),
    rotationDepsIn(world),
  );
}

const principalsOf = async (thingName: string) =>
  (await world.stores.iot.send(new ListThingPrincipalsCommand({ thingName }))).principals ?? [];

describe('rotation, phase one', () => {
  it('issues a new certificate that works beside the old one until confirmation', async () => {
    const device = await registered('ROT-1');

    const { status, body } = await rotate(device);

    expect(status).toBe(201);
    expect(body.previousCertificateId).toBe(device.certificateId);
    expect(await certificateStatus(world, device.certificateId)).toBe('ACTIVE');
    expect(await certificateStatus(world, body.certificateId)).toBe('ACTIVE');
    expect(await principalsOf(device.thingName)).toHaveLength(2);
    expect(await checkInvariants(world.stores)).toEqual([]);
  });

  it('answers a device that asks again for the same new key with the same certificate', async () => {
    const device = await registered('ROT-AGAIN');
    const first = await rotate(device);
    const before = await certificateIds(world);

    const again = await rotate(device, first.newKey);

    expect(again.status).toBe(200);
    expect(again.body.certificateId).toBe(first.body.certificateId);
    expect(await certificateIds(world)).toEqual(before);
    expect(await principalsOf(device.thingName)).toHaveLength(2);
  });

  it('refuses a captured rotation request sent again', async () => {
    const device = await registered('ROT-REPLAY');
    const { signed } = await rotate(device);

    const code = await codeRejectedBy(startRotation(signed, rotationDepsIn(world)));

    expect(code).toBe('DEVICE_PROOF_REPLAYED');
  });

  it("refuses a rotation signed by another device's key", async () => {
    const victim = await registered('ROT-VICTIM');
    const attacker = await registered('ROT-ATTACKER');
    const newKey = buildCsr();
    // The attacker's own certificate and key, claiming to be the victim.
    const asVictim = await proof(attacker.key, attacker.certificatePem, {
      action: 'rotate',
      serialNumber: victim.serialNumber,
      csr: newKey.pem,
    });
    // The victim's certificate named, signed with the attacker's key.
    const forged = await proof(attacker.key, victim.certificatePem, {
      action: 'rotate',
      serialNumber: victim.serialNumber,
      csr: newKey.pem,
    });

    expect(await codeRejectedBy(startRotation(asVictim, rotationDepsIn(world)))).toBe('DEVICE_PROOF_INVALID');
    expect(await codeRejectedBy(startRotation(forged, rotationDepsIn(world)))).toBe('DEVICE_PROOF_INVALID');
    expect(await principalsOf(victim.thingName)).toHaveLength(1);
  });

  it('refuses a proof signed ten minutes ago, and one for another route', async () => {
    const device = await registered('ROT-OLD');
    const csr = buildCsr().pem;
    const old = await proof(device.key, device.certificatePem, {
      action: 'rotate',
      serialNumber: device.serialNumber,
      csr,
      iat: Math.floor(Date.now() / 1000) - 600,
    });
    const check = await proof(device.key, device.certificatePem, {
      action: 'check',
      serialNumber: device.serialNumber,
      csr,
    });

    expect(await codeRejectedBy(startRotation(old, rotationDepsIn(world)))).toBe('DEVICE_PROOF_EXPIRED');
    expect(await codeRejectedBy(startRotation(check, rotationDepsIn(world)))).toBe('INVALID_REQUEST');
  });

  it('retires the waiting certificate when the device comes back with another new key', async () => {
    const device = await registered('ROT-OTHER-KEY');
    const first = await rotate(device);

    const second = await rotate(device);

    expect(second.status).toBe(201);
    expect(await certificateStatus(world, first.body.certificateId)).toBe('deleted');
    expect(await principalsOf(device.thingName)).toHaveLength(2);
    expect(await checkInvariants(world.stores)).toEqual([]);
  });
});

describe('rotation, phase two', () => {
  it('retires the old certificate once the device proves it holds the new key', async () => {
    const device = await registered('ROT-CONFIRM');
    const { body, newKey } = await rotate(device);

    const confirmed = await confirm(device, newKey.privateKey, body.certificatePem);

    expect(confirmed).toEqual({
      serialNumber: device.serialNumber,
      certificateId: body.certificateId,
      retiredCertificateId: device.certificateId,
    });
    expect(await certificateStatus(world, device.certificateId)).toBe('deleted');
    expect(await principalsOf(device.thingName)).toEqual([body.certificateArn]);
    expect(await checkInvariants(world.stores)).toEqual([]);
  });

  it('answers a confirmation asked again after a lost answer the same way', async () => {
    const device = await registered('ROT-CONFIRM-AGAIN');
    const { body, newKey } = await rotate(device);
    const first = await confirm(device, newKey.privateKey, body.certificatePem);

    const again = await confirm(device, newKey.privateKey, body.certificatePem);

    expect(again).toEqual(first);
  });

  it('refuses a confirmation signed with the old key', async () => {
    const device = await registered('ROT-CONFIRM-OLD');
    await rotate(device);

    const code = await codeRejectedBy(confirm(device, device.key, device.certificatePem));

    expect(code).toBe('DEVICE_PROOF_INVALID');
  });

  it('refuses a confirmation when nothing waits for one', async () => {
    const device = await registered('ROT-CONFIRM-NOTHING');

    const code = await codeRejectedBy(confirm(device, device.key, device.certificatePem));

    expect(code).toBe('NO_ROTATION_PENDING');
  });

  it('retires the old certificate when the grace period ends without a confirmation', async () => {
    const device = await registered('ROT-GRACE');
    const { body } = await rotate(device);

    const report = await reconcileIn(world, new Date(Date.now() + 3_601_000));

    expect(report.rotationsSettled).toBeGreaterThanOrEqual(1);
    expect(await certificateStatus(world, device.certificateId)).toBe('deleted');
    expect((await getDevice(device.serialNumber, admin())).certificateId).toBe(body.certificateId);
  });
});

describe('asked by an operator', () => {
  it('tells the device at its next check, and shows it overdue after the deployment’s delay', async () => {
    const device = await registered('ROT-ASKED');
    const check = async () =>
      checkRotation(
        await proof(device.key, device.certificatePem, {
          action: 'check',
          serialNumber: device.serialNumber,
        }),
        rotationDepsIn(world),
      );
    expect((await check()).rotationRequested).toBe(false);

    await requestDeviceRotation(device.serialNumber, OPERATOR, admin());

    expect((await check()).rotationRequested).toBe(true);
    const later = { ...admin(), clock: () => new Date(Date.now() + 120_000) };
    expect((await getDevice(device.serialNumber, later)).rotation).toMatchObject({
      due: true,
      overdue: true,
    });
  });

  it('asks a whole batch in one write', async () => {
    const device = await registered('ROT-BATCH');

    const batch = await requestBatchRotation('FAULTS', admin());

    expect(batch.rotationRequestedAt).toBeDefined();
    expect((await getDevice(device.serialNumber, admin())).rotation?.due).toBe(true);
  });
});

describe('decommissioning a device with a rotation under way', () => {
  it('leaves neither certificate working', async () => {
    const device = await registered('ROT-DECOMMISSION');
    const { body } = await rotate(device);

    await decommissionDevice(device.serialNumber, admin(), OPERATOR);

    expect(await certificateStatus(world, device.certificateId)).toBe('INACTIVE');
    expect(await certificateStatus(world, body.certificateId)).toBe('deleted');
    expect(await checkInvariants(world.stores)).toEqual([]);
  });
});

describe('reset after repair', () => {
  it('lets the same serial register once more with a claim bound to it: same thing name, new certificate', async () => {
    const device = await registered('RMA-1');
    await resetDevice(device.serialNumber, OPERATOR, admin());
    expect(await certificateStatus(world, device.certificateId)).toBe('deleted');

    const repaired = buildCsr();
    const again = await registerIn(
      world,
      await seedClaim(world, { batchId: 'RMA', serialNumber: device.serialNumber }),
      device.serialNumber,
      repaired.pem,
    );

    expect(again.status).toBe(201);
    expect(again.body.thingName).toBe(device.thingName);
    expect(again.body.certificateId).not.toBe(device.certificateId);
    expect(await principalsOf(device.thingName)).toEqual([again.body.certificateArn]);
    expect(await checkInvariants(world.stores)).toEqual([]);
  });

  it('refuses a reset device to a claim that is not bound to its serial', async () => {
    const device = await registered('RMA-UNBOUND');
    await resetDevice(device.serialNumber, OPERATOR, admin());

    const code = await codeRejectedBy(
      registerIn(world, await seedClaim(world, { maxUses: 100 }), device.serialNumber, buildCsr().pem),
    );

    expect(code).toBe('SERIAL_ALREADY_REGISTERED');
  });

  it('keeps refusing a serial that was not reset', async () => {
    const device = await registered('RMA-NOT-RESET');

    const code = await codeRejectedBy(
      registerIn(
        world,
        await seedClaim(world, { serialNumber: device.serialNumber }),
        device.serialNumber,
        buildCsr().pem,
      ),
    );

    expect(code).toBe('SERIAL_ALREADY_REGISTERED');
  });

  it('brings a decommissioned device back by explicit reset', async () => {
    const device = await registered('RMA-DECOMMISSIONED');
    await decommissionDevice(device.serialNumber, admin(), OPERATOR);

    await resetDevice(device.serialNumber, OPERATOR, admin());
    const again = await registerIn(
      world,
      await seedClaim(world, { serialNumber: device.serialNumber }),
      device.serialNumber,
      buildCsr().pem,
    );

    expect(again.body.thingName).toBe(device.thingName);
    expect(await checkInvariants(world.stores)).toEqual([]);
  });
});

describe('history', () => {
  it('lists every step of a device that went through all of it, in order', async () => {
    const device = await registered('HIST-1');
    await requestDeviceRotation(device.serialNumber, OPERATOR, admin());
    const { body, newKey } = await rotate(device);
    await confirm(device, newKey.privateKey, body.certificatePem);
    await resetDevice(device.serialNumber, OPERATOR, admin());
    await registerIn(
      world,
      await seedClaim(world, { serialNumber: device.serialNumber }),
      device.serialNumber,
      buildCsr().pem,
    );
    await decommissionDevice(device.serialNumber, admin(), OPERATOR);

    const { events } = await deviceHistory(device.serialNumber, {}, admin());

    expect(events.map((e) => [e.event, e.actor])).toEqual([
      ['REGISTERED', 'device'],
      ['ROTATION_REQUESTED', OPERATOR],
      ['ROTATED', 'device'],
      ['CONFIRMED', 'device'],
      ['CERTIFICATE_RETIRED', 'device'],
      ['RESET', OPERATOR],
      ['REGISTERED', 'device'],
      ['DECOMMISSIONED', OPERATOR],
    ]);
    expect(events.map((e) => e.at)).toEqual([...events.map((e) => e.at)].sort());
  });

  it('pages through a long history', async () => {
    const device = await registered('HIST-PAGES');
    for (let i = 0; i < 3; i++) await requestDeviceRotation(device.serialNumber, OPERATOR, admin());

    const first = await deviceHistory(device.serialNumber, { limit: 2 }, admin());
    const second = await deviceHistory(device.serialNumber, { limit: 2, cursor: first.cursor }, admin());

    expect(first.events).toHaveLength(2);
    expect(second.events.map((e) => e.event)).toEqual(['ROTATION_REQUESTED', 'ROTATION_REQUESTED']);
  });
});
