import { type KeyObject, randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreatePolicyCommand,
  DescribeCertificateCommand,
  ListCertificatesCommand,
} from '@aws-sdk/client-iot';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { checkInvariants, type Stores } from '../../sandbox/invariants.js';
import type { BehaviourConfig } from '../../sandbox/iot/behaviour.js';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { createTables, resourcesOf } from '../../sandbox/tables.js';
import type { AdminDeps } from '../../shared/admin/admin-service.js';
import { DynamoDbAdminStore } from '../../shared/admin/dynamodb-admin-store.js';
import { iotClient, RETRY } from '../../shared/aws-clients.js';
import { type ClaimSpec, mintClaim } from '../../shared/claims/mint-claim.js';
import { AppError, ServiceUnavailableError, ThrottledError } from '../../shared/errors.js';
import { DynamoDbInventory } from '../../shared/inventory/dynamodb-inventory.js';
import type { Inventory } from '../../shared/inventory/inventory.js';
import type { DeviceRecord } from '../../shared/inventory/model.js';
import { AwsIotGateway } from '../../shared/iot/aws-iot-gateway.js';
import { endpointResolver } from '../../shared/iot/endpoints.js';
import type { IotGateway } from '../../shared/iot/iot-gateway.js';
import { DynamoDbRotationStore } from '../../shared/lifecycle/dynamodb-rotation-store.js';
import type { RotationDeps } from '../../shared/lifecycle/rotate-device.js';
import { createLogger } from '../../shared/logger.js';
import { reconcile, SWEEP_MIN_AGE_MS } from '../../shared/registration/reconcile.js';
import { LEASE_MS, registerDevice } from '../../shared/registration/register-device.js';
import { parseRegisterRequest } from '../../shared/registration/request.js';
import { type EmulatorFixture, startEmulator } from './iot-emulator.js';

export const POLICY = 'device-policy';
const silent = createLogger({}, 'error', () => {});

/** DynamoDB Local tables of its own and a fresh IoT emulator, so the invariant checker sees only this world. */
export interface World {
  stores: Stores;
  inventory: DynamoDbInventory;
  rotations: DynamoDbRotationStore;
  emulator: EmulatorFixture;
  gateway: AwsIotGateway;
  close(): Promise<void>;
}

export async function createWorld(dynamodbEndpoint: string): Promise<World> {
  const suffix = randomUUID().slice(0, 8);
  const tables = {
    claims: `faults-claims-${suffix}`,
    devices: `faults-devices-${suffix}`,
    history: `faults-history-${suffix}`,
  };
  const dynamo = new DynamoDBClient({
    endpoint: dynamodbEndpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  await createTables(dynamo, resourcesOf('serverless.yml'), {
    ClaimsTable: tables.claims,
    DevicesTable: tables.devices,
    HistoryTable: tables.history,
  });
  const emulator = await startEmulator({ '*': { ratePerSecond: 0 } });
  const policyDocument = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 'iot:AssumeRoleWithCertificate', Resource: '*' }],
  });
  await emulator.client.send(new CreatePolicyCommand({ policyName: POLICY, policyDocument }));
  // The production client: its retries and timeouts are part of what the scenarios exercise.
  const client = iotClient({
    endpoint: emulator.emulator.url,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  return {
    stores: { dynamo, tables, iot: emulator.client, policyName: POLICY },
    inventory: new DynamoDbInventory(dynamo, tables),
    rotations: new DynamoDbRotationStore(dynamo, tables),
    emulator,
    gateway: new AwsIotGateway(client),
    close: () => emulator.emulator.close(),
  };
}

/** The ids of every certificate in this world's emulator. */
export async function certificateIds(world: World): Promise<Set<string>> {
  const page = await world.stores.iot.send(new ListCertificatesCommand({ pageSize: 250 }));
  return new Set(page.certificates?.map((c) => c.certificateId as string));
}

/** A certificate's status in this world's emulator, or 'deleted'. */
export async function certificateStatus(world: World, certificateId: string): Promise<string> {
  const described = await world.stores.iot
    .send(new DescribeCertificateCommand({ certificateId }))
    .catch(() => undefined);
  return described?.certificateDescription?.status ?? 'deleted';
}

/** One reconciler run over this world, as the scheduled function would do it at `clock`. */
export function reconcileIn(world: World, clock: Date, maxDevices = 100) {
  return reconcile({
    inventory: world.inventory,
    rotations: world.rotations,
    iot: world.gateway,
    policyName: POLICY,
    logger: silent,
    clock: () => clock,
    staleAfterMs: 0,
    maxDevices,
  });
}

/**
 * The gateway as an attempt sees it that dies (a Lambda timeout or crash) while attaching the policy:
 * after its commit, which is sent beside the attachments.
 */
export function dyingAtAttachPolicy(gateway: IotGateway): IotGateway {
  return Object.assign(Object.create(gateway) as IotGateway, {
    attachPolicy: () => new Promise<void>(() => {}),
  });
}

/** The inventory as an attempt sees it that dies while its commit is in flight (never lands). */
export function dyingAtCommit(inventory: Inventory): Inventory {
  return Object.assign(Object.create(inventory) as Inventory, {
    complete: () => new Promise<void>(() => {}),
  });
}

/** The inventory of an attempt whose commit fails (after the attachments it was sent beside landed). */
function failingCommit(error: Error): (inventory: Inventory) => Inventory {
  return (inventory) =>
    Object.assign(Object.create(inventory) as Inventory, {
      complete: async () => {
        throw error;
      },
    });
}

/** A claim in this world (single-use, CSR only, unless `spec` says otherwise); returns its token. */
export async function seedClaim(world: World, spec: Partial<ClaimSpec> = {}): Promise<string> {
  const { token, claim } = mintClaim({ batchId: 'FAULTS', ttlSeconds: 3600, ...spec });
  await DynamoDBDocumentClient.from(world.stores.dynamo).send(
    new PutCommand({ TableName: world.stores.tables.claims, Item: claim }),
  );
  return token;
}

/** The rotation routes' collaborators in this world (grace period of an hour unless given). */
export function rotationDepsIn(world: World, clock = () => new Date(), graceSeconds = 3600): RotationDeps {
  return {
    store: world.rotations,
    iot: world.gateway,
    endpoints: endpointResolver(world.gateway, {}),
    settings: {
      policyName: POLICY,
      roleAlias: 'alias',
      rootCaPem: 'CA',
      graceSeconds,
      overdueAfterSeconds: 60,
    },
    logger: silent,
    clock,
  };
}

/** The admin API's collaborators in this world (an operator's request to rotate is overdue after 60 s). */
export function adminDepsIn(world: World): AdminDeps {
  return {
    store: new DynamoDbAdminStore(world.stores.dynamo, world.stores.tables),
    iot: world.gateway,
    policyName: POLICY,
    defaultThingNamePrefix: '',
    overdueAfterSeconds: 60,
    logger: silent,
  };
}

/** A device registered in this world with a key of its own, as it keeps it. */
export interface RegisteredDevice {
  serialNumber: string;
  key: KeyObject;
  certificatePem: string;
  certificateId: string;
  certificateArn: string;
  thingName: string;
}

export async function registeredIn(
  world: World,
  serialNumber: string,
  claim: Partial<ClaimSpec> = {},
): Promise<RegisteredDevice> {
  const csr = buildCsr();
  const { body } = await registerIn(world, await seedClaim(world, claim), serialNumber, csr.pem);
  return { key: csr.privateKey, ...body };
}

/** A registration in this world with the production gateway. */
export function registerIn(
  world: World,
  token: string,
  serialNumber: string,
  /** undefined: ask for server-side key generation. */
  csrPem: string | undefined,
  clock = () => new Date(),
) {
  const body =
    csrPem === undefined
      ? { claimToken: token, serialNumber }
      : { claimToken: token, serialNumber, csr: csrPem };
  return registerDevice(parseRegisterRequest(body), {
    inventory: world.inventory,
    iot: world.gateway,
    endpoints: endpointResolver(world.gateway, {}),
    settings: { policyName: POLICY, roleAlias: 'alias', rootCaPem: 'CA', defaultThingNamePrefix: '' },
    logger: silent,
    clock,
  });
}

/**
 * What the first attempt ended in: `paused` (AWS IoT throttled it before its commit: progress kept,
 * lease released), `committed` (ACTIVE, but an attachment failed: the retry re-attaches).
 */
/**
 * A first attempt that fails (CreateThing refuses) and cannot delete its certificate: the record is
 * FAILED and keeps the certificate, INACTIVE, for the retry to reuse. Leaves the emulator without faults.
 */
export async function failKeepingCertificate(
  world: World,
  token: string,
  serialNumber: string,
  csrPem: string,
): Promise<string> {
  world.emulator.behaviour.set({
    '*': { ratePerSecond: 0 },
    CreateThing: { fault: { error: 'InvalidRequestException', times: 1 } },
    DeleteCertificate: { fault: { error: 'InternalFailureException' } },
  });
  await registerIn(world, token, serialNumber, csrPem).catch(() => undefined);
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
  const failed = await world.inventory.getDevice(serialNumber);
  if (failed?.status !== 'FAILED' || !failed.certificateId)
    throw new Error('the attempt kept no certificate');
  return failed.certificateId;
}

export type Outcome = 'completed' | 'committed' | 'paused' | 'rolled back' | 'refused' | 'died';

export interface Scenario {
  name: string;
  /** Emulator behaviour during the first attempt. */
  behaviour?: BehaviourConfig;
  /** Wraps the inventory or the IoT gateway during the first attempt (for DynamoDB faults or a dying attempt). */
  inventory?: (inventory: Inventory) => Inventory;
  iot?: (iot: IotGateway) => IotGateway;
  /** What the first attempt's rollback must end with, where the row is about it. */
  rollback?: 'COMPLETED' | 'INCOMPLETE';
  /** Certificates the final reconciler run must retire: created, their answer lost, never recorded. */
  orphans?: number;
  /** How long the first attempt may take before it counts as dead (default 5 s for dying ones, else 25 s). */
  answerWithinMs?: number;
  /** Who picks up after the first attempt: the device retrying (default) or the reconciler. */
  after?: 'retry' | 'reconcile then retry';
  expected: Outcome;
}

export interface ScenarioResult {
  /** Certificates the final reconciler run retired (created by this backend, referenced by nobody). */
  retired: number;
  name: string;
  outcome: Outcome;
  /** What the client was answered on the first attempt. */
  answer: string;
  rollback: string;
  violationsAfterFirst: string[];
  retry: Outcome;
  violationsAfterRetry: string[];
  /** Devices the reconciler rolled back between the attempt and the retry. */
  reconciled: number;
}

export async function runScenario(world: World, scenario: Scenario): Promise<ScenarioResult> {
  const { token, claim } = mintClaim({ batchId: 'FAULTS', ttlSeconds: 3600 });
  await DynamoDBDocumentClient.from(world.stores.dynamo).send(
    new PutCommand({ TableName: world.stores.tables.claims, Item: claim }),
  );
  const serialNumber = `SN-${randomUUID().slice(0, 8)}`;
  const csr = buildCsr();
  let clock = new Date();
  const attempt = (inventory: Inventory, iot: IotGateway) =>
    registerDevice(parseRegisterRequest({ claimToken: token, serialNumber, csr: csr.pem }), {
      inventory,
      iot,
      endpoints: endpointResolver(iot, {}),
      settings: { policyName: POLICY, roleAlias: 'alias', rootCaPem: 'CA', defaultThingNamePrefix: '' },
      logger: silent,
      clock: () => clock,
    });

  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 }, ...scenario.behaviour });
  const first = attempt(
    scenario.inventory?.(world.inventory) ?? world.inventory,
    scenario.iot?.(world.gateway) ?? world.gateway,
  );
  // A dying attempt never settles: give it a moment to do what it does before it "dies".
  const answer = await Promise.race([
    first.then(
      (r) => String(r.status),
      (error: unknown) => (error instanceof AppError ? `${error.code}` : (error as Error).name),
    ),
    new Promise<string>((resolve) =>
      // A dying attempt is declared dead after 5 s; any other gets ample time on a loaded machine (it
      // must never be mistaken for dead: its late rollback would then race the retry).
      setTimeout(
        () => resolve('no answer (died)'),
        scenario.answerWithinMs ?? (scenario.expected === 'died' ? 5_000 : 25_000),
      ),
    ),
  ]);
  world.emulator.behaviour.set({ '*': { ratePerSecond: 0 } });
  const device = await world.inventory.getDevice(serialNumber);
  const outcome: Outcome =
    answer === '201'
      ? 'completed'
      : answer.startsWith('no answer')
        ? 'died'
        : device?.status === 'ACTIVE'
          ? 'committed'
          : device?.status === 'PROVISIONING' && device.leaseUntil === 0
            ? 'paused'
            : device
              ? 'rolled back'
              : 'refused';
  // The reconciler has not run yet: a certificate whose creation's answer was lost is still unreferenced.
  const violationsAfterFirst = await checkInvariants(world.stores, {
    allowStale: true,
    allowUnreferenced: true,
  });

  // Later: the lease has lapsed; the reconciler and/or the device take over.
  clock = new Date(Date.now() + LEASE_MS + 1_000);
  let reconciled = 0;
  if (scenario.after === 'reconcile then retry') {
    reconciled = (await reconcileIn(world, clock)).rolledBack;
  }
  const retry: Outcome = await attempt(world.inventory, world.gateway).then(
    () => 'completed' as const,
    () => 'refused' as const,
  );
  const settled = await world.inventory.getDevice(serialNumber);
  // Then a scheduled reconciler run, once every certificate is old enough for its sweep.
  const end = new Date(Date.now() + SWEEP_MIN_AGE_MS + 1_000);
  const { certificatesRetired } = await reconcileIn(world, end);
  return {
    name: scenario.name,
    outcome,
    answer,
    rollback: describeRollback(device, outcome),
    violationsAfterFirst,
    retry,
    violationsAfterRetry: settled
      ? await checkInvariants(world.stores, { now: end })
      : ['device record missing after retry'],
    reconciled,
    retired: certificatesRetired,
  };
}

function describeRollback(device: DeviceRecord | undefined, outcome: Outcome): string {
  if (outcome === 'completed' || outcome === 'committed' || outcome === 'paused' || !device) return '-';
  if (device.status === 'PROVISIONING') return 'by the retry or the reconciler, once the lease lapses';
  return device.failure
    ? `${device.failure.rollback}${device.failure.leftovers.length ? ` (${device.failure.leftovers.join(', ')})` : ''}`
    : '-';
}

/** The IoT calls of a registration: two before its commit, two sent beside it. */
const BEFORE_COMMIT = ['CreateCertificateFromCsr', 'CreateThing'];
const BESIDE_COMMIT = ['AttachPolicy', 'AttachThingPrincipal'];
const SAGA_OPERATIONS = [...BEFORE_COMMIT, ...BESIDE_COMMIT];
const beforeCommit = (operation: string) => BEFORE_COMMIT.includes(operation);

/** Every scenario the fault tests and `npm run scenarios` run. */
export const SCENARIOS: Scenario[] = [
  { name: 'no fault', expected: 'completed' },
  ...SAGA_OPERATIONS.flatMap((operation): Scenario[] => [
    {
      name: `${operation} fails once (InternalFailureException)`,
      behaviour: { [operation]: { fault: { error: 'InternalFailureException', nth: 1 } } },
      expected: 'completed',
    },
    {
      name: `${operation} keeps failing (ServiceUnavailableException)`,
      behaviour: { [operation]: { fault: { error: 'ServiceUnavailableException' } } },
      expected: beforeCommit(operation) ? 'rolled back' : 'committed',
    },
    {
      name: `${operation} keeps throttling`,
      behaviour: { [operation]: { ratePerSecond: 0.001, burst: 0.5 } },
      expected: beforeCommit(operation) ? 'paused' : 'committed',
    },
  ]),
  ...SAGA_OPERATIONS.flatMap((operation): Scenario[] => [
    {
      name: `${operation} lands but its answer is lost once`,
      behaviour: { [operation]: { fault: { error: 'InternalFailureException', nth: 1, landed: true } } },
      expected: 'completed',
      // The SDK's retry creates a second certificate; the first is nobody's until the sweep.
      orphans: operation === 'CreateCertificateFromCsr' ? 1 : 0,
    },
    {
      name: `${operation} lands every time but every answer is lost`,
      behaviour: { [operation]: { fault: { error: 'ServiceUnavailableException', landed: true } } },
      expected: beforeCommit(operation) ? 'rolled back' : 'committed',
      orphans: operation === 'CreateCertificateFromCsr' ? RETRY.maxAttempts : 0,
    },
  ]),
  {
    name: 'the commit fails after the attachments landed; detachments take 2 s to propagate',
    inventory: failingCommit(new ServiceUnavailableError('the inventory is unavailable')),
    behaviour: {
      DetachThingPrincipal: { propagationMs: 2_000 },
      DetachPolicy: { propagationMs: 2_000 },
    },
    expected: 'rolled back',
    // Within the rollback's budget: it waits the propagation out and leaves nothing.
    rollback: 'COMPLETED',
  },
  {
    name: 'the commit fails after the attachments landed; detachments outlast the rollback budget (10 s)',
    inventory: failingCommit(new ServiceUnavailableError('the inventory is unavailable')),
    behaviour: {
      DetachThingPrincipal: { propagationMs: 10_000 },
      DetachPolicy: { propagationMs: 10_000 },
    },
    after: 'reconcile then retry',
    expected: 'rolled back',
  },
  {
    name: 'CreateThing refuses (InvalidRequestException, not retried)',
    behaviour: { CreateThing: { fault: { error: 'InvalidRequestException' } } },
    expected: 'rolled back',
  },
  {
    name: 'DescribeEndpoint unavailable (before anything is written)',
    behaviour: { DescribeEndpoint: { fault: { error: 'ServiceUnavailableException' } } },
    expected: 'refused',
  },
  {
    name: 'CreateCertificateFromCsr times out once (4 s > 3 s request timeout)',
    behaviour: { CreateCertificateFromCsr: { fault: { error: 'Timeout', nth: 1, holdMs: 4_000 } } },
    expected: 'completed',
  },
  {
    name: 'the commit fails and the certificate cannot be deleted',
    inventory: failingCommit(new ServiceUnavailableError('the inventory is unavailable')),
    behaviour: { DeleteCertificate: { fault: { error: 'InternalFailureException' } } },
    expected: 'rolled back',
  },
  {
    name: 'DynamoDB throttles the commit',
    inventory: failingCommit(new ThrottledError('the inventory is throttling', { retryAfterSeconds: 1 })),
    expected: 'rolled back',
  },
  {
    name: 'the attempt dies after its commit, before the policy is attached; the device retries (a replay re-attaches)',
    iot: dyingAtAttachPolicy,
    expected: 'died',
  },
  {
    name: 'the attempt dies before its commit lands; the device retries',
    inventory: dyingAtCommit,
    expected: 'died',
    // Created and attached, never recorded: the sweep retires it.
    orphans: 1,
  },
  {
    name: 'the attempt dies before its commit lands; the reconciler rolls back, then the device retries',
    inventory: dyingAtCommit,
    after: 'reconcile then retry',
    expected: 'died',
    // The reconciler's rollback retires it, found on the thing.
  },
];

export function scenarioTable(results: ScenarioResult[]): string {
  const rows = results.map((r) =>
    [
      r.name,
      r.outcome,
      r.answer,
      r.rollback,
      r.violationsAfterFirst.length === 0 ? 'hold' : r.violationsAfterFirst.join('; '),
      r.retry,
      String(r.retired),
      r.violationsAfterRetry.length === 0 ? 'hold' : r.violationsAfterRetry.join('; '),
    ].join(' | '),
  );
  return [
    '| scenario | first attempt | client saw | rollback | invariants | device retry | certificates the reconciler retired | invariants |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((row) => `| ${row} |`),
  ].join('\n');
}
