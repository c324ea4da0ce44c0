import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';
import {
  DescribeCertificateCommand,
  DetachPolicyCommand,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
} from '@aws-sdk/client-iot';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { CompactSign } from 'jose';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { certificateThumbprint, PROOF_TYPE } from '../../sandbox/device-proof.js';
import { checkInvariants } from '../../sandbox/invariants.js';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { decommissionDevice, requestBatchRotation, resetDevice } from '../../shared/admin/admin-service.js';
import { ServiceUnavailableError } from '../../shared/errors.js';
import { checkRotation, confirmRotation, startRotation } from '../../shared/lifecycle/rotate-device.js';
import type { RotationStore } from '../../shared/lifecycle/rotation-store.js';
import { SWEEP_MIN_AGE_MS } from '../../shared/registration/reconcile.js';
import { LEASE_MS } from '../../shared/registration/register-device.js';
import { codeRejectedBy } from '../support/error-code.js';
import { proof } from '../support/proofs.js';
import {
  adminDepsIn,
  createWorld,
  POLICY,
  type RegisteredDevice,
  reconcileIn,
  registeredIn,
  registerIn,
  rotationDepsIn,
  seedClaim,
  type World,
} from '../support/scenarios.js';

/**
 * Attacks on rotation, reset and history (issue 12), through DynamoDB Local and the IoT emulator.
 * The first block reproduces what the attack pass found (each failed before its fix); `holds:` tests
 * are attacks the code withstood, kept as regression guards. A fresh world per test: several findings leave a broken
 * state behind, and the invariant checker looks at everything in a world.
 */
let world: World;

beforeEach(async () => {
  world = await createWorld(inject('dynamodbEndpoint'));
});
afterEach(async () => {
  await world.close();
});

const OPERATOR = 'arn:aws:sts::123456789012:assumed-role/fleet-line-operator/mallory';
const admin = () => adminDepsIn(world);

type Device = RegisteredDevice;

const registered = (serialNumber: string, claim: { batchId?: string } = {}) =>
  registeredIn(world, serialNumber, claim);

/** RS256 for a server-generated (RSA) key, ES256 for the EC keys buildCsr makes. */
const algFor = (key: KeyObject) => (key.asymmetricKeyType === 'rsa' ? 'RS256' : 'ES256');

async function rotate(device: Device, newKey = buildCsr(), deps = rotationDepsIn(world)) {
  const signed = await proof(
    device.key,
    device.certificatePem,
    { action: 'rotate', serialNumber: device.serialNumber, csr: newKey.pem },
    { alg: algFor(device.key) },
  );
  const result = await startRotation(signed, deps);
  return { ...result, newKey, signed };
}

async function confirm(
  serialNumber: string,
  key: KeyObject,
  certificatePem: string,
  deps = rotationDepsIn(world),
) {
  return confirmRotation(await proof(key, certificatePem, { action: 'confirm', serialNumber }), deps);
}

/** The certificates on a thing that would get credentials: ACTIVE, with the device policy. */
async function working(thingName: string): Promise<string[]> {
  const principals =
    (await world.stores.iot.send(new ListThingPrincipalsCommand({ thingName })).catch(() => undefined))
      ?.principals ?? [];
  const result: string[] = [];
  for (const arn of principals) {
    const certificateId = arn.slice(arn.lastIndexOf('/') + 1);
    const described = await world.stores.iot
      .send(new DescribeCertificateCommand({ certificateId }))
      .catch(() => undefined);
    const policies = await world.stores.iot.send(new ListAttachedPoliciesCommand({ target: arn }));
    const active = described?.certificateDescription?.status === 'ACTIVE';
    if (active && policies.policies?.some((p) => p.policyName === POLICY)) result.push(arn);
  }
  return result;
}

const later = (ms: number) => new Date(Date.now() + ms);
const GRACE_ENDED = 3_601_000;
const code = codeRejectedBy;

// ─────────────────────────────────────────────────────────────────────────────────────────────────
// Findings: each of these fails on the current code.
// ─────────────────────────────────────────────────────────────────────────────────────────────────

describe('what the attack pass found, fixed', () => {
  it('refuses a server-keygen re-issue once the device has started a rotation: its identity stays with its key, through the grace end', async () => {
    // A device registers with a server-generated key (single-use claim) and at once rotates to a key
    // it made itself (PENDING). Within the 10-minute re-issue window, whoever also holds the claim
    // token (a leaked one: the re-issue rule accepts the token alone) asks for a re-issue.
    const serialNumber = 'ATK-KEYGEN-ROTATED';
    const token = await seedClaim(world, { allowServerKeygen: true, maxUses: 1 });
    const first = await registerIn(world, token, serialNumber, undefined);
    const device: Device = { ...first.body, key: createPrivateKey(first.body.privateKey as string) };
    const rotated = await rotate(device);
    expect(rotated.status).toBe(201);

    const reissue = await code(registerIn(world, token, serialNumber, undefined));
    await reconcileIn(world, later(GRACE_ENDED));

    // The device got its key (it signed a rotation with it): no re-issue, and the grace end makes the
    // rotation's certificate the one working certificate.
    expect(reissue).toBe('SERIAL_ALREADY_REGISTERED');
    const record = await world.inventory.getDevice(serialNumber);
    expect(record?.certificateId).toBe(rotated.body.certificateId);
    expect(await working(device.thingName)).toEqual([rotated.body.certificateArn]);
    expect(await checkInvariants(world.stores, { now: later(GRACE_ENDED) })).toEqual([]);
  });

  it('refuses a reset device the claim it first registered with, bound and with uses left: only a claim minted after the reset', async () => {
    // A device whose key "must be considered lost" is reset. Its factory claim was bound to its
    // serial with two uses; that token sits in the lost unit's flash. It must not bring the identity
    // back: a reset device registers once more only with a claim minted for that purpose.
    const serialNumber = 'ATK-RMA-OLD-CLAIM';
    const token = await seedClaim(world, { serialNumber, maxUses: 2 });
    const original = buildCsr();
    await registerIn(world, token, serialNumber, original.pem);
    await resetDevice(serialNumber, OPERATOR, admin());

    const thief = buildCsr();
    const outcome = await code(registerIn(world, token, serialNumber, thief.pem));

    expect(outcome).toBe('SERIAL_ALREADY_REGISTERED');
  });

  it("rolls the new certificate back when a failed commit's abandon lands with its answer lost", async () => {
    const device = await registered('ATK-ABANDON-LOST');
    const base = rotationDepsIn(world);
    const store = Object.assign(Object.create(world.rotations) as RotationStore, {
      // The commit does not land (DynamoDB unavailable) ...
      commitRotation: async () => {
        throw new ServiceUnavailableError('the inventory is unavailable');
      },
      // ... the abandon lands, and only its answer is lost.
      abandonRotation: async (...args: Parameters<RotationStore['abandonRotation']>) => {
        await world.rotations.abandonRotation(...args);
        throw new ServiceUnavailableError('connection reset');
      },
    });

    const outcome = await code(rotate(device, buildCsr(), { ...base, store }));

    expect(outcome).toBe('SERVICE_UNAVAILABLE');
    const record = await world.inventory.getDevice(device.serialNumber);
    expect(record?.rotation).toBeUndefined();
    // The rotation is gone, so nothing will roll its certificate back but the sweep, minutes later
    // (and never, if the reconciler is more than a day behind). (It once left two working certificates.)
    expect(await working(device.thingName)).toEqual([device.certificateArn]);
  });

  it('keeps a working certificate for a device whose decommission stopped halfway, through the grace end', async () => {
    const device = await registered('ATK-DECOM-HALF');
    await rotate(device);
    // The decommission retires the rotation's certificate (UpdateCertificate #1 deactivates it), then
    // AWS IoT refuses the deactivation of the device's own certificate (#2): 503, the operator walks
    // away (or waits), the record stays ACTIVE, still naming the deleted certificate as PENDING.
    world.emulator.behaviour.set({
      '*': { ratePerSecond: 0 },
      UpdateCertificate: { fault: { error: 'InvalidRequestException', nth: 2 } },
    });
    const decommission = await code(decommissionDevice(device.serialNumber, admin(), OPERATOR));
    world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
    expect(decommission).not.toBe('no error');
    expect(await working(device.thingName)).toEqual([device.certificateArn]);

    await reconcileIn(world, later(GRACE_ENDED));

    // The device still ACTIVE must keep a working certificate: the reconciler must not promote a
    // certificate that no longer exists (nor retire the only one that works). (It once did.)
    const record = await world.inventory.getDevice(device.serialNumber);
    expect(record?.status).toBe('ACTIVE');
    expect(await working(device.thingName)).toHaveLength(1);
  });

  it('does not tell a device registered again after a reset to rotate for a request older than its certificate', async () => {
    const batchId = `ATK-B-${randomBytes(3).toString('hex')}`;
    const device = await registered('ATK-RMA-ASKED', { batchId });
    const { body, newKey } = await rotate(device);
    await confirm(device.serialNumber, newKey.privateKey, body.certificatePem);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The operator asks the batch to rotate; this unit is sent to repair instead and comes back.
    await requestBatchRotation(batchId, admin());
    await new Promise((resolve) => setTimeout(resolve, 20));
    await resetDevice(device.serialNumber, OPERATOR, admin());
    const repaired = buildCsr();
    const again = await registerIn(
      world,
      await seedClaim(world, { batchId: 'RMA', serialNumber: device.serialNumber }),
      device.serialNumber,
      repaired.pem,
    );

    const check = await checkRotation(
      await proof(repaired.privateKey, again.body.certificatePem, {
        action: 'check',
        serialNumber: device.serialNumber,
      }),
      rotationDepsIn(world),
    );

    // Its certificate was issued after the request: nothing to rotate. (It once said rotationRequested: the
    // record kept rotatedAt and previousCertificateId from before the reset.)
    expect(check.rotationRequested).toBe(false);
  });

  it('the invariant checker reports a pending certificate without the device policy (which the grace end would make the only one)', async () => {
    const device = await registered('ATK-CHECKER-POLICY');
    const { body } = await rotate(device);
    await world.stores.iot.send(new DetachPolicyCommand({ policyName: POLICY, target: body.certificateArn }));

    const violations = await checkInvariants(world.stores);

    expect(violations).not.toEqual([]);
  });

  it("the invariant checker reports a record whose certificatePem is another device's certificate (the proof is verified against it)", async () => {
    const victim = await registered('ATK-CHECKER-PEM-V');
    const attacker = await registered('ATK-CHECKER-PEM-A');
    await DynamoDBDocumentClient.from(world.stores.dynamo).send(
      new UpdateCommand({
        TableName: world.stores.tables.devices,
        Key: { serialNumber: victim.serialNumber },
        UpdateExpression: 'SET certificatePem = :pem',
        ExpressionAttributeValues: { ':pem': attacker.certificatePem },
      }),
    );
    // The consequence, if anything ever writes such a record: the attacker's key checks as the victim
    // (its proof names the victim's certificateId but is verified with the record's PEM).
    const thumbprintOfVictim = certificateThumbprint(victim.certificatePem);
    expect(thumbprintOfVictim).not.toBe(certificateThumbprint(attacker.certificatePem));

    const violations = await checkInvariants(world.stores);

    expect(violations).not.toEqual([]);
  });
});

// ─────────────────────────────────────────────────────────────────────────────────────────────────
// What held up: attacks and fault storms the code withstood.
// ─────────────────────────────────────────────────────────────────────────────────────────────────

/** A proof with any header, signed any way (or not at all). */
async function rawProof(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  sign: (input: CompactSign) => Promise<string>,
): Promise<string> {
  return sign(
    new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader(
      header as { alg: string },
    ),
  );
}
const fresh = (serialNumber: string, action: string, extra: Record<string, unknown> = {}) => ({
  action,
  serialNumber,
  iat: Math.floor(Date.now() / 1000),
  nonce: randomBytes(16).toString('base64url'),
  ...extra,
});

describe('holds: identity', () => {
  it('holds: a rotation proof naming the pending certificate (signed by the new key) is refused', async () => {
    const device = await registered('HOLD-PENDING-ROTATES');
    const { body, newKey } = await rotate(device);
    const asPending = { ...device, key: newKey.privateKey, certificatePem: body.certificatePem };

    expect(await code(rotate(asPending))).toBe('DEVICE_PROOF_INVALID');
  });

  it('holds: alg none, HS256 keyed with the certificate, a missing typ, a swapped action', async () => {
    const device = await registered('HOLD-ALGS');
    const x5t = certificateThumbprint(device.certificatePem);
    const payload = fresh(device.serialNumber, 'rotate', { csr: buildCsr().pem });
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: PROOF_TYPE, 'x5t#S256': x5t })}.${b64(payload)}.`;
    const hs256 = await rawProof({ alg: 'HS256', typ: PROOF_TYPE, 'x5t#S256': x5t }, payload, (s) =>
      s.sign(new TextEncoder().encode(device.certificatePem)),
    );
    const noTyp = await rawProof({ alg: 'ES256', 'x5t#S256': x5t }, payload, (s) => s.sign(device.key));
    const asConfirm = await proof(device.key, device.certificatePem, {
      action: 'confirm',
      serialNumber: device.serialNumber,
    });

    expect(await code(startRotation(none, rotationDepsIn(world)))).toBe('DEVICE_PROOF_INVALID');
    expect(await code(startRotation(hs256, rotationDepsIn(world)))).toBe('DEVICE_PROOF_INVALID');
    expect(await code(startRotation(noTyp, rotationDepsIn(world)))).toBe('INVALID_REQUEST');
    expect(await code(startRotation(asConfirm, rotationDepsIn(world)))).toBe('INVALID_REQUEST');
    expect(await working(device.thingName)).toHaveLength(1);
  });

  it("holds: another device's pending certificate cannot confirm, check or rotate this one", async () => {
    const victim = await registered('HOLD-X-VICTIM');
    await rotate(victim);
    const attacker = await registered('HOLD-X-ATTACKER');
    const { body, newKey } = await rotate(attacker);
    const as = (action: 'confirm' | 'check') =>
      proof(newKey.privateKey, body.certificatePem, { action, serialNumber: victim.serialNumber });

    expect(await code(confirmRotation(await as('confirm'), rotationDepsIn(world)))).toBe(
      'DEVICE_PROOF_INVALID',
    );
    expect(await code(checkRotation(await as('check'), rotationDepsIn(world)))).toBe('DEVICE_PROOF_INVALID');
    expect((await world.inventory.getDevice(victim.serialNumber))?.certificateId).toBe(victim.certificateId);
  });

  it('holds: a confirmation proof sent twice, and a re-ask proof sent twice, are refused the second time', async () => {
    const device = await registered('HOLD-REPLAYS');
    const first = await rotate(device);
    const again = await proof(device.key, device.certificatePem, {
      action: 'rotate',
      serialNumber: device.serialNumber,
      csr: first.newKey.pem,
    });
    expect((await startRotation(again, rotationDepsIn(world))).status).toBe(200);
    expect(await code(startRotation(again, rotationDepsIn(world)))).toBe('DEVICE_PROOF_REPLAYED');

    const signed = await proof(first.newKey.privateKey, first.body.certificatePem, {
      action: 'confirm',
      serialNumber: device.serialNumber,
    });
    await confirmRotation(signed, rotationDepsIn(world));
    expect(await code(confirmRotation(signed, rotationDepsIn(world)))).toBe('DEVICE_PROOF_REPLAYED');
  });

  it('holds: a batch token, and a claim bound to another serial, do not re-register a reset device', async () => {
    const device = await registered('HOLD-RMA');
    await resetDevice(device.serialNumber, OPERATOR, admin());

    const shared = await seedClaim(world, { maxUses: 100 });
    const otherSerial = await seedClaim(world, { serialNumber: 'HOLD-RMA-OTHER' });

    expect(await code(registerIn(world, shared, device.serialNumber, buildCsr().pem))).toBe(
      'SERIAL_ALREADY_REGISTERED',
    );
    expect(await code(registerIn(world, otherSerial, device.serialNumber, buildCsr().pem))).toBe(
      'SERIAL_ALREADY_REGISTERED',
    );
    // The old key cannot act for the reset device either.
    expect(await code(rotate(device))).toBe('DEVICE_PROOF_INVALID');
    expect(await working(device.thingName)).toEqual([]);
  });
});

/** Everything settled: a reconciler run past every lease and the sweep's minimum age. */
async function settle(): Promise<void> {
  await reconcileIn(world, later(SWEEP_MIN_AGE_MS + LEASE_MS + 1_000));
}

describe('holds: races', () => {
  it('holds: two rotations at once with different keys: one issued, one told to retry, one working certificate in the end', async () => {
    const device = await registered('HOLD-RACE-TWO');
    const outcomes = await Promise.all([
      rotate(device).then(
        (r) => r,
        (e) => e,
      ),
      rotate(device).then(
        (r) => r,
        (e) => e,
      ),
    ]);
    const issued = outcomes.filter((o) => 'status' in o && o.status === 201);
    expect(issued).toHaveLength(1);
    const winner = issued[0] as Awaited<ReturnType<typeof rotate>>;
    await confirm(device.serialNumber, winner.newKey.privateKey, winner.body.certificatePem);
    await settle();

    expect(await working(device.thingName)).toEqual([winner.body.certificateArn]);
    expect(await checkInvariants(world.stores, { now: later(SWEEP_MIN_AGE_MS + LEASE_MS + 1_000) })).toEqual(
      [],
    );
  });

  it('holds: a rotation with another key racing the confirmation ends with one working certificate the record names', async () => {
    const device = await registered('HOLD-RACE-ROTATE-CONFIRM');
    const first = await rotate(device);
    await Promise.allSettled([
      confirm(device.serialNumber, first.newKey.privateKey, first.body.certificatePem),
      rotate(device),
    ]);
    await settle();

    const record = await world.inventory.getDevice(device.serialNumber);
    const workingNow = await working(device.thingName);
    const pending = record?.rotation?.state === 'PENDING' ? [record.rotation.certificateArn] : [];
    expect(workingNow.sort()).toEqual([record?.certificateArn, ...pending].sort());
  });

  it("holds: the confirmation racing the reconciler's grace end: one promotion, one working certificate", async () => {
    const device = await registered('HOLD-RACE-GRACE');
    const { body, newKey } = await rotate(device);
    await Promise.allSettled([
      confirm(device.serialNumber, newKey.privateKey, body.certificatePem),
      reconcileIn(world, later(GRACE_ENDED)),
    ]);
    await reconcileIn(world, later(GRACE_ENDED + LEASE_MS));

    expect(await working(device.thingName)).toEqual([body.certificateArn]);
    expect((await world.inventory.getDevice(device.serialNumber))?.rotation).toBeUndefined();
  });

  it('holds: a reset racing a rotation asked again: nothing works for the reset device afterwards', async () => {
    const device = await registered('HOLD-RACE-RESET');
    const first = await rotate(device);
    await Promise.allSettled([
      resetDevice(device.serialNumber, OPERATOR, admin()),
      rotate(device, first.newKey),
      rotate(device, first.newKey),
    ]);
    // The operator retries a reset that failed.
    await resetDevice(device.serialNumber, OPERATOR, admin()).catch(() => undefined);
    await settle();

    expect((await world.inventory.getDevice(device.serialNumber))?.status).toBe('RESET');
    expect(await working(device.thingName)).toEqual([]);
  });

  it('holds: a decommission racing the confirmation: nothing works afterwards', async () => {
    const device = await registered('HOLD-RACE-DECOM');
    const { body, newKey } = await rotate(device);
    await Promise.allSettled([
      decommissionDevice(device.serialNumber, admin(), OPERATOR),
      confirm(device.serialNumber, newKey.privateKey, body.certificatePem),
    ]);
    // Whichever lost is retried.
    await decommissionDevice(device.serialNumber, admin(), OPERATOR).catch(() => undefined);
    await settle();
    await decommissionDevice(device.serialNumber, admin(), OPERATOR).catch(() => undefined);

    expect((await world.inventory.getDevice(device.serialNumber))?.status).toBe('DECOMMISSIONED');
    expect(await working(device.thingName)).toEqual([]);
  });

  it('holds: a registration replay (same claim and key) racing the confirmation does not bring the old certificate back', async () => {
    const csr = buildCsr();
    const token = await seedClaim(world);
    const { body: first } = await registerIn(world, token, 'HOLD-RACE-REPLAY', csr.pem);
    const device: Device = { ...first, key: csr.privateKey };
    const { body, newKey } = await rotate(device);
    await Promise.allSettled([
      confirm(device.serialNumber, newKey.privateKey, body.certificatePem),
      registerIn(world, token, device.serialNumber, buildCsr().pem),
      registerIn(world, token, device.serialNumber, csr.pem),
    ]);
    await settle();

    expect(await working(device.thingName)).toEqual([body.certificateArn]);
  });
});

describe('holds: lost answers', () => {
  it('holds: a promotion that lands with its answer lost: the retry answers 200, the reconciler retires the old one', async () => {
    const device = await registered('HOLD-LOST-PROMOTE');
    const { body, newKey } = await rotate(device);
    const store = Object.assign(Object.create(world.rotations) as RotationStore, {
      promote: async (...args: Parameters<RotationStore['promote']>) => {
        await world.rotations.promote(...args);
        throw new ServiceUnavailableError('connection reset');
      },
    });
    expect(
      await code(
        confirm(device.serialNumber, newKey.privateKey, body.certificatePem, {
          ...rotationDepsIn(world),
          store,
        }),
      ),
    ).toBe('SERVICE_UNAVAILABLE');

    const again = await confirm(device.serialNumber, newKey.privateKey, body.certificatePem);
    await reconcileIn(world, later(LEASE_MS + 1_000));

    expect(again.certificateId).toBe(body.certificateId);
    expect(await working(device.thingName)).toEqual([body.certificateArn]);
  });

  it('holds: a beginRotation that lands with its answer lost: the device asks again after the lease and gets one certificate', async () => {
    const device = await registered('HOLD-LOST-BEGIN');
    const store = Object.assign(Object.create(world.rotations) as RotationStore, {
      beginRotation: async (...args: Parameters<RotationStore['beginRotation']>) => {
        await world.rotations.beginRotation(...args);
        throw new ServiceUnavailableError('connection reset');
      },
    });
    const newKey = buildCsr();
    expect(await code(rotate(device, newKey, { ...rotationDepsIn(world), store }))).toBe(
      'SERVICE_UNAVAILABLE',
    );
    expect(await code(rotate(device, newKey))).toBe('ROTATION_IN_PROGRESS');

    const afterLease = rotationDepsIn(world, () => later(LEASE_MS + 1_000));
    const again = await rotate(device, newKey, afterLease);
    await confirm(device.serialNumber, newKey.privateKey, again.body.certificatePem, afterLease);
    await settle();

    expect(await working(device.thingName)).toEqual([again.body.certificateArn]);
  });

  it('holds: a commit that lands with its answer lost is answered 201 with the committed certificate', async () => {
    const device = await registered('HOLD-LOST-COMMIT');
    const store = Object.assign(Object.create(world.rotations) as RotationStore, {
      commitRotation: async (...args: Parameters<RotationStore['commitRotation']>) => {
        await world.rotations.commitRotation(...args);
        throw new ServiceUnavailableError('connection reset');
      },
    });

    const { status, body } = await rotate(device, buildCsr(), { ...rotationDepsIn(world), store });

    expect(status).toBe(201);
    expect((await world.inventory.getDevice(device.serialNumber))?.rotation?.certificateId).toBe(
      body.certificateId,
    );
    expect((await working(device.thingName)).sort()).toEqual(
      [device.certificateArn, body.certificateArn].sort(),
    );
  });
});

describe('holds: the invariant checker', () => {
  it('holds: reports a retired certificate reactivated behind the record, and a certificate moved to another thing', async () => {
    const a = await registered('HOLD-CHK-A');
    const b = await registered('HOLD-CHK-B');
    const { body, newKey } = await rotate(a);
    await confirm(a.serialNumber, newKey.privateKey, body.certificatePem);
    expect(await checkInvariants(world.stores)).toEqual([]);

    // b's certificate also on a's thing: a stranger would be a.
    await world.gateway.attachThingPrincipal(a.thingName, b.certificateArn);

    const violations = await checkInvariants(world.stores);
    expect(violations.some((v) => v.includes(a.thingName))).toBe(true);
  });
});
