import { DescribeCertificateCommand, ListCertificatesCommand } from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkInvariants } from '../../sandbox/invariants.js';
import { buildCsr, keyPair } from '../../sandbox/pki/csr.js';
import { hashClaimToken } from '../../shared/claims/token.js';
import { LEASE_MS } from '../../shared/registration/register-device.js';
import { codeRejectedBy } from '../support/error-code.js';
import {
  createWorld,
  dyingAtCommit,
  reconcileIn,
  registerIn,
  runScenario,
  SCENARIOS,
  seedClaim,
  type World,
} from '../support/scenarios.js';

let world: World;

beforeAll(async () => {
  world = await createWorld(inject('dynamodbEndpoint'));
});
afterAll(async () => {
  await world.close();
});

describe('registration under faults (DynamoDB Local, IoT emulator, the invariant checker after each step)', () => {
  it.each(SCENARIOS.map((scenario) => [scenario.name, scenario] as const))(
    '%s',
    async (_name, scenario) => {
      const result = await runScenario(world, scenario);

      expect(result.outcome).toBe(scenario.expected);
      expect(result.violationsAfterFirst).toEqual([]);
      expect(result.retry).toBe('completed');
      expect(result.violationsAfterRetry).toEqual([]);
      expect(result.reconciled).toBe(scenario.after === 'reconcile then retry' ? 1 : 0);
      expect(result.retired).toBe(scenario.orphans ?? 0);
      if (scenario.rollback) expect(result.rollback).toMatch(new RegExp(`^${scenario.rollback}`));
    },
    60_000,
  );
});

describe('races through the IoT emulator', () => {
  it('50 concurrent registrations with one single-use token make exactly one device and one certificate', async () => {
    const token = await seedClaim(world);
    const before =
      (await world.stores.iot.send(new ListCertificatesCommand({ pageSize: 250 }))).certificates?.length ?? 0;
    const csr = buildCsr();

    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => registerIn(world, token, `SN-RACE-${i}`, csr.pem)),
    );

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const after =
      (await world.stores.iot.send(new ListCertificatesCommand({ pageSize: 250 }))).certificates?.length ?? 0;
    expect(after - before).toBe(1);
    expect(await checkInvariants(world.stores)).toEqual([]);
  }, 60_000);

  it('the same device sending its registration 10 times at once gets one certificate', async () => {
    const token = await seedClaim(world);
    const csr = buildCsr();
    const before =
      (await world.stores.iot.send(new ListCertificatesCommand({ pageSize: 250 }))).certificates?.length ?? 0;

    const codes = await Promise.all(
      Array.from({ length: 10 }, () => codeRejectedBy(registerIn(world, token, 'SN-SAME-10', csr.pem))),
    );
    const retry = await registerIn(world, token, 'SN-SAME-10', csr.pem);

    expect(codes.filter((code) => code === 'no error').length).toBeGreaterThanOrEqual(1);
    expect(new Set(codes.filter((code) => code !== 'no error'))).toSatisfy((set: Set<string>) =>
      [...set].every((code) => code === 'REGISTRATION_IN_PROGRESS' || code === 'REGISTRATION_CONFLICT'),
    );
    expect(retry.status).toBe(200);
    const after =
      (await world.stores.iot.send(new ListCertificatesCommand({ pageSize: 250 }))).certificates?.length ?? 0;
    expect(after - before).toBe(1);
    expect(await checkInvariants(world.stores)).toEqual([]);
  }, 60_000);
});

describe('a duplicate that loses the race to its own twin', () => {
  it.each([
    ['before the twin reserved (both reads stale)', true],
    ['between its two reads (device stale, claim already spent)', false],
  ])(
    'gets the finished registration replayed (200, same certificate) when it read %s',
    async (_when, staleClaim) => {
      const token = await seedClaim(world);
      const csr = buildCsr();
      const before = await world.inventory.getClaim(hashClaimToken(token));
      const first = await registerIn(world, token, `SN-TWIN-${staleClaim}`, csr.pem);
      // The duplicate's first reads, taken before its twin committed.
      let deviceReads = 0;
      let claimReads = 0;
      const stale = Object.assign(Object.create(world.inventory) as World['inventory'], {
        getDevice: (serial: string) =>
          deviceReads++ === 0 ? Promise.resolve(undefined) : world.inventory.getDevice(serial),
        getClaim: (hash: string) =>
          staleClaim && claimReads++ === 0 ? Promise.resolve(before) : world.inventory.getClaim(hash),
      });

      const duplicate = await registerIn(
        { ...world, inventory: stale },
        token,
        `SN-TWIN-${staleClaim}`,
        csr.pem,
      );

      expect(duplicate.status).toBe(200);
      expect(duplicate.body.certificateId).toBe(first.body.certificateId);
      expect(await checkInvariants(world.stores)).toEqual([]);
    },
  );

  it('still refuses another device on a used-up claim', async () => {
    const token = await seedClaim(world);
    await registerIn(world, token, 'SN-USED-1', buildCsr().pem);

    expect(await codeRejectedBy(registerIn(world, token, 'SN-USED-2', buildCsr().pem))).toBe(
      'CLAIM_TOKEN_USED_UP',
    );
  });
});

describe('retries that replace a certificate', () => {
  const exists = async (certificateId: string) =>
    (await codeRejectedBy(world.stores.iot.send(new DescribeCertificateCommand({ certificateId })))) ===
    'no error';

  it('reissues key and certificate when a server-keygen device registers again, retiring the old one', async () => {
    const token = await seedClaim(world, { allowServerKeygen: true });
    const first = await registerIn(world, token, 'SN-KEYGEN', undefined);

    const second = await registerIn(world, token, 'SN-KEYGEN', undefined);

    expect(second.status).toBe(201);
    expect(second.body.certificateId).not.toBe(first.body.certificateId);
    expect(second.body.privateKey).not.toBe(first.body.privateKey);
    expect(await exists(first.body.certificateId)).toBe(false);
    expect(await checkInvariants(world.stores)).toEqual([]);
  });

  it('replaces the unfinished certificate when a device whose attempt was paused retries with a new CSR for the same key', async () => {
    const token = await seedClaim(world);
    const keys = keyPair('ec-p256', true);
    // CreateThing throttles: the attempt pauses with its certificate recorded.
    world.emulator.behaviour.set({
      '*': { ratePerSecond: 0 },
      CreateThing: { ratePerSecond: 0.001, burst: 0.5 },
    });
    const paused = await codeRejectedBy(
      registerIn(world, token, 'SN-NEWCSR', buildCsr({ keys, commonName: 'first' }).pem),
    );
    world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
    const unfinished = (await world.inventory.getDevice('SN-NEWCSR'))?.certificateId as string;
    const later = new Date(Date.now() + LEASE_MS + 1_000);

    const retry = await registerIn(
      world,
      token,
      'SN-NEWCSR',
      buildCsr({ keys, commonName: 'second' }).pem,
      () => later,
    );

    expect(paused).toBe('THROTTLED');
    expect(unfinished).toEqual(expect.any(String));
    expect(retry.body.certificateId).not.toBe(unfinished);
    expect(await exists(unfinished)).toBe(false);
    expect(await checkInvariants(world.stores, { now: later })).toEqual([]);
  });
});

describe('the reconciler', () => {
  const run = (clock: Date, maxDevices?: number) => reconcileIn(world, clock, maxDevices);

  it('leaves a registration whose lease is still live alone', async () => {
    const token = await seedClaim(world);
    await registerIn(world, token, 'SN-LIVE', buildCsr().pem);

    const report = await run(new Date());

    expect((await world.inventory.getDevice('SN-LIVE'))?.status).toBe('ACTIVE');
    expect(report.rolledBack).toBe(0);
  });

  it('stops at maxDevices and says so, and the next run continues', async () => {
    const serials = ['SN-STALE-1', 'SN-STALE-2', 'SN-STALE-3'];
    for (const serial of serials) {
      const token = await seedClaim(world);
      void registerDying(serial, token);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const later = new Date(Date.now() + LEASE_MS + 1_000);

    const first = await run(later, 2);
    const second = await run(later, 2);

    expect(first).toMatchObject({ rolledBack: 2, truncated: true });
    expect(second).toMatchObject({ rolledBack: 1, truncated: false });
    for (const serial of serials) expect((await world.inventory.getDevice(serial))?.status).toBe('FAILED');
    expect(await checkInvariants(world.stores, { now: later })).toEqual([]);
  }, 30_000);
});

/** Starts a registration that dies before its commit lands, without waiting for it. */
function registerDying(serial: string, token: string): Promise<unknown> {
  const inventory = dyingAtCommit(world.inventory) as World['inventory'];
  return registerIn({ ...world, inventory }, token, serial, buildCsr().pem).catch(() => undefined);
}
