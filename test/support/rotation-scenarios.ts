import { randomUUID } from 'node:crypto';
import {
  DescribeCertificateCommand,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
} from '@aws-sdk/client-iot';
import { checkInvariants } from '../../sandbox/invariants.js';
import type { BehaviourConfig } from '../../sandbox/iot/behaviour.js';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { AppError, ServiceUnavailableError } from '../../shared/errors.js';
import type { IotGateway } from '../../shared/iot/iot-gateway.js';
import { confirmRotation, startRotation } from '../../shared/lifecycle/rotate-device.js';
import type { RotationStore } from '../../shared/lifecycle/rotation-store.js';
import { SWEEP_MIN_AGE_MS } from '../../shared/registration/reconcile.js';
import { LEASE_MS } from '../../shared/registration/register-device.js';
import { proof } from './proofs.js';
import { POLICY, reconcileIn, registerIn, rotationDepsIn, seedClaim, type World } from './scenarios.js';

/**
 * A rotation interrupted at one of its calls. The device then does what docs/lifecycle.md tells
 * firmware to do: asks again with the same new key (phase one) or confirms again (phase two), a
 * minute later; then the scheduled reconciler runs. It must end with exactly one working certificate,
 * the new one, and the invariants holding.
 */
export interface RotationScenario {
  name: string;
  /** Which phase meets the fault. */
  phase: 'rotate' | 'confirm';
  behaviour?: BehaviourConfig;
  iot?: (iot: IotGateway) => IotGateway;
  store?: (store: RotationStore) => RotationStore;
  /** What the device was answered on the faulty attempt. */
  expected: string;
  /** Certificates the final reconciler run must retire (created, never recorded). */
  orphans?: number;
}

export interface RotationScenarioResult {
  name: string;
  answer: string;
  violationsAfterFirst: string[];
  retry: string;
  retired: number;
  /** Certificates on the device's thing that are ACTIVE with the device policy, at the end. */
  working: string[];
  /** Whether the one working certificate is the record's, and the new one. */
  workingIsNew: boolean;
  violationsAfterRetry: string[];
}

const answerOf = (promise: Promise<unknown>, dying: boolean): Promise<string> =>
  Promise.race([
    promise.then(
      (result) => String((result as { status?: number }).status ?? 200),
      (error: unknown) => (error instanceof AppError ? error.code : (error as Error).name),
    ),
    new Promise<string>((resolve) => setTimeout(() => resolve('no answer (died)'), dying ? 5_000 : 25_000)),
  ]);

export async function runRotationScenario(
  world: World,
  scenario: RotationScenario,
): Promise<RotationScenarioResult> {
  const serialNumber = `ROT-${randomUUID().slice(0, 8)}`;
  const first = buildCsr();
  const { body } = await registerIn(world, await seedClaim(world), serialNumber, first.pem);
  const next = buildCsr();
  let clock = new Date();
  const deps = (faulty: boolean) => {
    const base = rotationDepsIn(world, () => clock);
    return faulty
      ? {
          ...base,
          iot: scenario.iot?.(base.iot) ?? base.iot,
          store: scenario.store?.(base.store) ?? base.store,
        }
      : base;
  };
  const rotate = async (faulty: boolean) =>
    startRotation(
      await proof(first.privateKey, body.certificatePem, { action: 'rotate', serialNumber, csr: next.pem }),
      deps(faulty),
    );
  const confirm = async (faulty: boolean, newPem: string) =>
    confirmRotation(await proof(next.privateKey, newPem, { action: 'confirm', serialNumber }), deps(faulty));
  const dying = scenario.expected.startsWith('no answer');

  let answer: string;
  let newPem: string | undefined;
  if (scenario.phase === 'rotate') {
    world.emulator.behaviour.set({ '*': { ratePerSecond: 0 }, ...scenario.behaviour });
    answer = await answerOf(rotate(true), dying);
  } else {
    newPem = (await rotate(false)).body.certificatePem;
    world.emulator.behaviour.set({ '*': { ratePerSecond: 0 }, ...scenario.behaviour });
    answer = await answerOf(confirm(true, newPem), dying);
  }
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
  const violationsAfterFirst = await checkInvariants(world.stores, {
    allowStale: true,
    allowUnreferenced: true,
  });

  // A minute later (past any lease), the device asks again and confirms.
  clock = new Date(Date.now() + LEASE_MS + 1_000);
  const retry = await (async () => {
    try {
      newPem ??= (await rotate(false)).body.certificatePem;
      if (scenario.phase === 'rotate') newPem = (await rotate(false)).body.certificatePem;
      await confirm(false, newPem);
      return 'confirmed';
    } catch (error) {
      return error instanceof AppError ? error.code : (error as Error).name;
    }
  })();
  const end = new Date(Date.now() + SWEEP_MIN_AGE_MS + 1_000);
  const { certificatesRetired } = await reconcileIn(world, end);
  const device = await world.inventory.getDevice(serialNumber);
  const working = await workingCertificates(world, device?.thingName ?? serialNumber);
  return {
    name: scenario.name,
    answer,
    violationsAfterFirst,
    retry,
    retired: certificatesRetired,
    working,
    workingIsNew:
      working.length === 1 &&
      device !== undefined &&
      working[0] === device.certificateArn &&
      device.certificateId !== body.certificateId,
    violationsAfterRetry: await checkInvariants(world.stores, { now: end }),
  };
}

/** The certificates on a thing that would get credentials: ACTIVE, with the device policy. */
async function workingCertificates(world: World, thingName: string): Promise<string[]> {
  const principals =
    (await world.stores.iot.send(new ListThingPrincipalsCommand({ thingName }))).principals ?? [];
  const working: string[] = [];
  for (const arn of principals) {
    const certificateId = arn.slice(arn.lastIndexOf('/') + 1);
    const described = await world.stores.iot.send(new DescribeCertificateCommand({ certificateId }));
    const policies = await world.stores.iot.send(new ListAttachedPoliciesCommand({ target: arn }));
    const active = described.certificateDescription?.status === 'ACTIVE';
    if (active && policies.policies?.some((p) => p.policyName === POLICY)) working.push(arn);
  }
  return working;
}

/** The gateway of an attempt that dies (a timeout, a crash) at one call: it never answers. */
const dyingAt =
  (operation: keyof IotGateway) =>
  (iot: IotGateway): IotGateway =>
    Object.assign(Object.create(iot) as IotGateway, { [operation]: () => new Promise<never>(() => {}) });

const ISSUE = ['CreateCertificateFromCsr', 'AttachPolicy', 'AttachThingPrincipal'];
const RETIRE = ['DetachPolicy', 'DetachThingPrincipal', 'UpdateCertificate', 'DeleteCertificate'];

/** Every rotation scenario the fault tests and `npm run scenarios` run. */
export const ROTATION_SCENARIOS: RotationScenario[] = [
  { name: 'rotation: no fault', phase: 'rotate', expected: '201' },
  ...ISSUE.flatMap((operation): RotationScenario[] => [
    {
      name: `rotation: ${operation} fails once`,
      phase: 'rotate',
      behaviour: { [operation]: { fault: { error: 'InternalFailureException', nth: 1 } } },
      expected: '201',
    },
    {
      name: `rotation: ${operation} keeps failing`,
      phase: 'rotate',
      behaviour: { [operation]: { fault: { error: 'ServiceUnavailableException' } } },
      expected: 'SERVICE_UNAVAILABLE',
    },
    {
      name: `rotation: ${operation} lands but its answer is lost once`,
      phase: 'rotate',
      behaviour: { [operation]: { fault: { error: 'InternalFailureException', nth: 1, landed: true } } },
      expected: '201',
      // The SDK's retry creates a second certificate; the first is nobody's until the sweep.
      orphans: operation === 'CreateCertificateFromCsr' ? 1 : 0,
    },
  ]),
  {
    name: 'rotation: the attempt dies while attaching the new certificate',
    phase: 'rotate',
    iot: dyingAt('attachPolicy'),
    expected: 'no answer (died)',
    // Created and attached, never recorded: the reconciler abandons the rotation, the sweep retires it.
    orphans: 1,
  },
  {
    name: 'rotation: its commit fails (DynamoDB unavailable)',
    phase: 'rotate',
    store: (store) =>
      Object.assign(Object.create(store) as RotationStore, {
        commitRotation: async () => {
          throw new ServiceUnavailableError('the inventory is unavailable');
        },
      }),
    expected: 'SERVICE_UNAVAILABLE',
  },
  ...RETIRE.map(
    (operation): RotationScenario => ({
      name: `confirmation: ${operation} keeps failing while the old certificate is retired`,
      phase: 'confirm',
      behaviour: { [operation]: { fault: { error: 'ServiceUnavailableException' } } },
      // Confirmed: the new certificate is the device's; the old one waits for the retry or the reconciler.
      expected: '200',
    }),
  ),
  {
    name: 'confirmation: the attempt dies while detaching the old certificate',
    phase: 'confirm',
    iot: dyingAt('detachPolicy'),
    expected: 'no answer (died)',
  },
];

export function rotationScenarioTable(results: RotationScenarioResult[]): string {
  const rows = results.map((r) =>
    [
      r.name,
      r.answer,
      r.violationsAfterFirst.length === 0 ? 'hold' : r.violationsAfterFirst.join('; '),
      r.retry,
      String(r.retired),
      `${r.working.length}${r.workingIsNew ? ' (the new one)' : ''}`,
      r.violationsAfterRetry.length === 0 ? 'hold' : r.violationsAfterRetry.join('; '),
    ].join(' | '),
  );
  return [
    '| scenario | device saw | invariants | device asks again and confirms | certificates the reconciler retired | working certificates | invariants |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((row) => `| ${row} |`),
  ].join('\n');
}
