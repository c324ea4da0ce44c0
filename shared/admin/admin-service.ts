import { randomUUID } from 'node:crypto';
import { type BatchView, batchView } from '../batches/batch-view.js';
import { mintClaim } from '../claims/mint-claim.js';
import {
  BatchNotFoundError,
  BatchRevokedError,
  ClaimNotFoundError,
  DeviceNotActiveError,
  DeviceNotFoundError,
  InvalidRequestError,
  RegistrationConflictError,
  RegistrationInProgressError,
  ServiceUnavailableError,
  ThingNameTakenError,
  ThingNameTooLongError,
} from '../errors.js';
import { historyEvent } from '../history/history.js';
import { type Claim, type DeviceRecord, recordedCertificate } from '../inventory/model.js';
import type { IotGateway } from '../iot/iot-gateway.js';
import { rotationStatus } from '../lifecycle/rotation-due.js';
import type { Logger } from '../logger.js';
import { metric } from '../metrics.js';
import { LEASE_MS } from '../registration/register-device.js';
import { MAX_THING_NAME_LENGTH } from '../registration/request.js';
import {
  DEFAULT_ROLLBACK_BUDGET_MS,
  retireCertificate,
  retryWhileDetaching,
  WHILE_DETACHING,
} from '../registration/rollback.js';
import type { AdminStore } from './admin-store.js';
import { reserveIdempotencyKey } from './idempotency.js';
import type {
  ClaimView,
  CreateClaimsResponse,
  DeviceHistoryResponse,
  DeviceView,
  ListClaimsResponse,
  ListDevicesResponse,
  RevokeClaimsResponse,
} from './response-schemas.js';
import type { CreateClaimsRequest, ListQuery, RevokeClaimsRequest } from './schemas.js';

export type { ClaimView, CreatedClaim, DeviceView } from './response-schemas.js';

export interface AdminDeps {
  store: AdminStore;
  iot: IotGateway;
  policyName: string;
  /** ROTATION_OVERDUE_AFTER_SECONDS: an operator's request to rotate open this long is overdue. */
  overdueAfterSeconds?: number;
  /** THING_NAME_PREFIX: what registration puts before the serial when a claim names no prefix. */
  defaultThingNamePrefix: string;
  /** THING_NAME_PATTERN: the thing names the register role may create; `*` (any) when absent. */
  thingNamePattern?: string;
  logger: Logger;
  clock?: () => Date;
}

/**
 * Mints a batch of claims (bound to serials when given) and stores their hashes. With an idempotency
 * key, a repeat of the request mints nothing (see idempotency.ts).
 */
export async function createClaims(
  request: CreateClaimsRequest,
  deps: AdminDeps,
  options: { idempotencyKey?: string } = {},
): Promise<CreateClaimsResponse> {
  const serials = request.serialNumbers;
  if (serials && request.count !== undefined && request.count !== serials.length) {
    throw new InvalidRequestError(
      `count (${request.count}) differs from the number of serialNumbers (${serials.length})`,
    );
  }
  if (serials && new Set(serials).size !== serials.length)
    throw new InvalidRequestError('serialNumbers has duplicates');
  const count = serials?.length ?? request.count;
  if (count === undefined) throw new InvalidRequestError('give count or serialNumbers');
  if (request.allowServerKeygen && (request.maxUses ?? 1) > 1) {
    // A server-generated key leaves the device nothing but the token to prove who it is: on a shared
    // token, a failed attempt could never be resumed by its own device (docs/registration.md).
    const detail = 'server-side key generation needs single-use claims (maxUses 1)';
    throw new InvalidRequestError(detail, {
      extensions: { errors: [{ pointer: '/allowServerKeygen', detail }] },
    });
  }
  const prefix = request.thingNamePrefix || deps.defaultThingNamePrefix;
  checkThingNames(prefix, serials);
  checkThingNamePattern(prefix, serials, deps.thingNamePattern ?? '*');
  const now = (deps.clock ?? (() => new Date()))();
  if (!(await deps.store.openBatch(request.batchId, now))) {
    throw new BatchRevokedError(`batch ${request.batchId} was revoked; mint into another batch`);
  }
  if (serials) {
    // Each bound serial's thing name is its own from now on: no other claim's serial can spell it
    // (prefix "SN-" + "X" and prefix "" + "SN-X" make the same name).
    const taken = await deps.store.reserveThingNames(
      serials.map((serialNumber) => ({ thingName: `${prefix}${serialNumber}`, serialNumber })),
      now,
    );
    if (taken.length > 0) {
      throw new ThingNameTakenError(
        `${taken.length} thing name(s) of this batch belong to other serial numbers`,
        {
          extensions: {
            errors: taken.slice(0, MAX_LISTED_ERRORS).map((thingName) => ({
              pointer: `/serialNumbers/${serials.findIndex((serial) => `${prefix}${serial}` === thingName)}`,
              detail: `thing name ${thingName} belongs to another serial number`,
            })),
          },
        },
      );
    }
  }
  const minted = Array.from({ length: count }, (_, i) =>
    mintClaim(
      {
        batchId: request.batchId,
        ttlSeconds: request.ttlSeconds,
        ...(request.maxUses !== undefined ? { maxUses: request.maxUses } : {}),
        ...(serials ? { serialNumber: serials[i] as string } : {}),
        ...(request.allowServerKeygen !== undefined ? { allowServerKeygen: request.allowServerKeygen } : {}),
        ...(request.thingNamePrefix ? { thingNamePrefix: request.thingNamePrefix } : {}),
        ...(request.attributes ? { attributes: request.attributes } : {}),
      },
      now,
    ),
  );
  const { idempotencyKey } = options;
  if (idempotencyKey) {
    const claimIds = minted.map((m) => m.claim.claimId);
    await reserveIdempotencyKey(idempotencyKey, request, claimIds, deps.store, now);
  }
  await deps.store.putClaims(minted.map((m) => m.claim));
  const expiresAt = minted[0]?.claim.expiresAt;
  if (expiresAt !== undefined) {
    // The tokens exist and must reach the caller: a count that fails is logged, not answered.
    await deps.store.countIssued(request.batchId, expiresAt, minted.length).catch((error: unknown) => {
      deps.logger.error('batch count not updated', { batchId: request.batchId, error });
      metric(deps.logger, 'BatchCountMissed', { batchId: request.batchId, count: minted.length });
    });
  }
  // The tokens exist now and must reach the caller: failing to mark the key only delays a repeat's
  // answer until the record counts as stale.
  if (idempotencyKey) {
    await deps.store.completeClaimsRequest(idempotencyKey).catch((error: unknown) => {
      deps.logger.warn('idempotency record not completed', { error: (error as Error).name });
    });
  }
  deps.logger.info('claims created', { batchId: request.batchId, count });
  return {
    batchId: request.batchId,
    claims: minted.map(({ token, claim }) => ({
      claimId: claim.claimId,
      token,
      expiresAt: new Date(claim.expiresAt * 1000).toISOString(),
      ...(claim.serialNumber ? { serialNumber: claim.serialNumber } : {}),
    })),
  };
}

/** Errors listed for a batch whose thing names are too long: enough to act on, not one per serial. */
const MAX_LISTED_ERRORS = 10;

/**
 * Refuses a batch whose claims could never register: a prefix that leaves no room for a serial
 * number, or a bound serial that makes a thing name over AWS IoT's limit. Registration builds the
 * thing name the same way (shared/registration/register-device.ts).
 */
function checkThingNames(prefix: string, serials: string[] | undefined): void {
  if (prefix.length >= MAX_THING_NAME_LENGTH) {
    const detail = `the thing name prefix is ${prefix.length} characters; with a serial number it would exceed ${MAX_THING_NAME_LENGTH}`;
    throw new ThingNameTooLongError(detail, {
      extensions: { errors: [{ pointer: '/thingNamePrefix', detail }] },
    });
  }
  const tooLong = (serials ?? []).flatMap((serial, index) => {
    const length = prefix.length + serial.length;
    if (length <= MAX_THING_NAME_LENGTH) return [];
    return [
      {
        pointer: `/serialNumbers/${index}`,
        detail: `the thing name would be ${length} characters (prefix ${prefix.length} + serial ${serial.length}); AWS IoT allows ${MAX_THING_NAME_LENGTH}`,
      },
    ];
  });
  if (tooLong.length > 0) {
    throw new ThingNameTooLongError(
      `${tooLong.length} serial number(s) with the prefix make thing names over ${MAX_THING_NAME_LENGTH} characters; ` +
        `use a shorter prefix or serials of at most ${MAX_THING_NAME_LENGTH - prefix.length} characters`,
      { extensions: { errors: tooLong.slice(0, MAX_LISTED_ERRORS) } },
    );
  }
}

/**
 * Refuses a batch whose thing names the register role may not create (serverless.yml's
 * `thingNamePattern` scopes iot:CreateThing): AWS would answer AccessDenied at registration. Bound
 * serials are checked name by name; an unbound batch needs a pattern of the form `<literal>*` that its
 * prefix starts with (any other pattern cannot be shown to admit every serial).
 */
function checkThingNamePattern(prefix: string, serials: string[] | undefined, pattern: string): void {
  if (pattern === '*') return;
  const glob = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  const literal = /^[^*?]*\*$/.test(pattern) ? pattern.slice(0, -1) : undefined;
  const admitted = serials
    ? serials.every((serial) => glob.test(`${prefix}${serial}`))
    : literal !== undefined && prefix.startsWith(literal);
  if (!admitted) {
    const detail = `thing names of this batch would not all match the deployment's thing name pattern "${pattern}", so AWS IoT would refuse to create them`;
    throw new InvalidRequestError(detail, {
      extensions: { errors: [{ pointer: '/thingNamePrefix', detail }] },
    });
  }
}

export async function listClaims(query: ListQuery, deps: AdminDeps): Promise<ListClaimsResponse> {
  if (!query.batchId) throw new InvalidRequestError('batchId is required');
  const [page, batch] = await Promise.all([
    deps.store.listClaims(query.batchId, query.limit ?? 100, query.cursor),
    deps.store.getBatch(query.batchId),
  ]);
  // A revoked batch revokes its claims without touching them: show them as the registration sees them.
  const claims = page.items.map((claim) =>
    claimView(batch?.status === 'REVOKED' ? { ...claim, status: 'REVOKED' } : claim),
  );
  return { claims, ...(page.cursor ? { cursor: page.cursor } : {}) };
}

/** Revokes one claim, or every claim of a batch; revoking twice is harmless. */
export async function revokeClaims(
  request: RevokeClaimsRequest,
  deps: AdminDeps,
): Promise<RevokeClaimsResponse> {
  const now = (deps.clock ?? (() => new Date()))();
  if ('claimId' in request) {
    const claim = await deps.store.findClaim(request.claimId);
    if (!claim) throw new ClaimNotFoundError(`no claim ${request.claimId}`);
    return { revoked: (await deps.store.revokeClaim(claim, now)) ? 1 : 0 };
  }
  // One write, whatever the batch's size: every registration's transaction checks the batch item.
  const item = await deps.store.revokeBatch(request.batchId, now);
  if (!item) throw new BatchNotFoundError(`no batch ${request.batchId}`);
  const batch = batchView(item, now);
  deps.logger.info('batch revoked', { batchId: request.batchId, revoked: batch.claims.revoked });
  return { revoked: batch.claims.revoked };
}

export async function getBatch(batchId: string, deps: AdminDeps): Promise<BatchView> {
  const item = await deps.store.getBatch(batchId);
  if (!item) throw new BatchNotFoundError(`no batch ${batchId}`);
  return batchView(item, (deps.clock ?? (() => new Date()))());
}

export async function listBatches(
  query: { limit?: number | undefined; cursor?: string | undefined },
  deps: AdminDeps,
): Promise<{ batches: BatchView[]; cursor?: string }> {
  const now = (deps.clock ?? (() => new Date()))();
  const page = await deps.store.listBatches(query.limit ?? 100, query.cursor);
  return {
    batches: page.items.map((item) => batchView(item, now)),
    ...(page.cursor ? { cursor: page.cursor } : {}),
  };
}

export async function getDevice(serialNumber: string, deps: AdminDeps): Promise<DeviceView> {
  const device = await deps.store.getDevice(serialNumber);
  if (!device) throw new DeviceNotFoundError(`no device ${serialNumber}`);
  return (await viewsOf([device], deps))[0] as DeviceView;
}

export async function listDevices(query: ListQuery, deps: AdminDeps): Promise<ListDevicesResponse> {
  const filter = {
    ...(query.batchId ? { batchId: query.batchId } : {}),
    ...(query.status ? { status: query.status } : {}),
  };
  const page = await deps.store.listDevices(filter, query.limit ?? 100, query.cursor);
  const views = await viewsOf(page.items, deps);
  return {
    // A page may come back shorter than the limit: the cursor goes on where the query stopped.
    devices: query.rotation === 'overdue' ? views.filter((view) => view.rotation?.overdue) : views,
    ...(page.cursor ? { cursor: page.cursor } : {}),
  };
}

/** Device views with their rotation status, which needs each batch's request (one read per batch). */
async function viewsOf(devices: DeviceRecord[], deps: AdminDeps): Promise<DeviceView[]> {
  const now = (deps.clock ?? (() => new Date()))();
  const batchIds = [...new Set(devices.filter((d) => d.status === 'ACTIVE').map((d) => d.batchId))];
  const batches = new Map(
    await Promise.all(batchIds.map(async (id) => [id, await deps.store.getBatch(id)] as const)),
  );
  const overdueAfterMs = (deps.overdueAfterSeconds ?? DEFAULT_OVERDUE_AFTER_SECONDS) * 1000;
  return devices.map((device): DeviceView => {
    const view = deviceView(device);
    if (device.status !== 'ACTIVE') return view;
    return {
      ...view,
      rotation: { ...rotationStatus(device, batches.get(device.batchId), now, overdueAfterMs) },
    };
  });
}

const DEFAULT_OVERDUE_AFTER_SECONDS = 7 * 86_400;

/** An operator asks an ACTIVE device to rotate: it learns so from its next rotation check. */
export async function requestDeviceRotation(
  serialNumber: string,
  actor: string,
  deps: AdminDeps,
): Promise<DeviceView> {
  const device = await deps.store.getDevice(serialNumber);
  if (!device) throw new DeviceNotFoundError(`no device ${serialNumber}`);
  const now = (deps.clock ?? (() => new Date()))();
  if (device.status !== 'ACTIVE' || !(await deps.store.requestRotation(device, now, actor))) {
    throw new DeviceNotActiveError(
      `device ${serialNumber} is ${device.status}: only an ACTIVE device rotates`,
    );
  }
  deps.logger.info('rotation requested', { serialNumber, actor });
  return getDevice(serialNumber, deps);
}

/** An operator asks every device of a batch to rotate: one write, however large the batch. */
export async function requestBatchRotation(batchId: string, deps: AdminDeps): Promise<BatchView> {
  const now = (deps.clock ?? (() => new Date()))();
  const item = await deps.store.requestBatchRotation(batchId, now);
  if (!item) throw new BatchNotFoundError(`no batch ${batchId}`);
  deps.logger.info('batch rotation requested', { batchId });
  return batchView(item, now);
}

/** A device's history, oldest first, a page at a time. */
export async function deviceHistory(
  serialNumber: string,
  query: { limit?: number | undefined; cursor?: string | undefined },
  deps: AdminDeps,
): Promise<DeviceHistoryResponse> {
  const [device, page] = await Promise.all([
    deps.store.getDevice(serialNumber),
    deps.store.listHistory(serialNumber, query.limit ?? 100, query.cursor),
  ]);
  if (!device) throw new DeviceNotFoundError(`no device ${serialNumber}`);
  return {
    serialNumber,
    events: page.items.map(historyEvent),
    ...(page.cursor ? { cursor: page.cursor } : {}),
  };
}

/**
 * Resets a device after a repair: its certificates (current, and a rotation's) retired in AWS IoT,
 * its thing, thing name, record and history kept, its status RESET, so that the repaired device can
 * register once more with a claim bound to its serial and get the same identity back. Decommissioned
 * devices too (this is the operator's explicit action). Idempotent.
 */
export async function resetDevice(serialNumber: string, actor: string, deps: AdminDeps): Promise<DeviceView> {
  const device = await deps.store.getDevice(serialNumber);
  if (!device) throw new DeviceNotFoundError(`no device ${serialNumber}`);
  if (device.status === 'RESET') return deviceView(device);
  const held = await hold(device, deps);
  try {
    await retireRotation(device, held, deps);
    await retireAll(device, deps);
    const now = (deps.clock ?? (() => new Date()))();
    if (!(await deps.store.markReset(held, now, actor))) {
      throw new RegistrationConflictError('the device changed while being reset; retry', {
        retryAfterSeconds: 1,
      });
    }
    deps.logger.info('device reset', { serialNumber, actor });
    const { certificateId: _id, certificateArn: _arn, certificatePem: _pem, rotation: _r, ...rest } = device;
    return deviceView({ ...rest, status: 'RESET', resetAt: now.toISOString(), updatedAt: now.toISOString() });
  } catch (error) {
    await deps.store.releaseHold(held).catch(() => undefined);
    throw error;
  }
}

/** Takes the record under a lease of its own, so that no registration or rotation works on it meanwhile. */
async function hold(device: DeviceRecord, deps: AdminDeps): Promise<DeviceRecord> {
  const started = (deps.clock ?? (() => new Date()))();
  const held: DeviceRecord = { ...device, leaseId: randomUUID(), leaseUntil: started.getTime() + LEASE_MS };
  if (device.status === 'PROVISIONING' || !(await deps.store.holdForDecommission(device, held, started))) {
    throw new RegistrationInProgressError('this device is being worked on; retry shortly', {
      retryAfterSeconds: 5,
    });
  }
  return held;
}

/**
 * A rotation's certificate retired for good, then the rotation forgotten (under the operator's hold),
 * before anything else: if the operator's action stops halfway, no rotation is left naming a deleted
 * certificate for the reconciler to promote.
 */
async function retireRotation(device: DeviceRecord, held: DeviceRecord, deps: AdminDeps): Promise<void> {
  if (!device.rotation) return;
  const certificate = rotationCertificate(device);
  if (certificate) await retireOne(device, certificate, deps);
  await deps.store.dropRotation(held);
}

/** The record's own certificate retired for good (its rotation's went first). */
async function retireAll(device: DeviceRecord, deps: AdminDeps): Promise<void> {
  const certificate = recordedCertificate(device);
  if (certificate) await retireOne(device, certificate, deps);
}

async function retireOne(
  device: DeviceRecord,
  certificate: { certificateId: string; certificateArn: string },
  deps: AdminDeps,
): Promise<void> {
  const outcome = await retireCertificate(
    deps.iot,
    deps.policyName,
    device.thingName,
    certificate,
    deps.logger,
  );
  if (outcome.rollback === 'INCOMPLETE') {
    throw new ServiceUnavailableError('a certificate could not be retired yet in AWS IoT; retry', {
      retryAfterSeconds: 5,
    });
  }
}

/** A rotation's other certificate: the new one waiting (PENDING), the old one (RETIRING), or the one replaced. */
function rotationCertificate(
  device: DeviceRecord,
): { certificateId: string; certificateArn: string } | undefined {
  const rotation = device.rotation;
  if (rotation?.certificateId && rotation.certificateArn) {
    return { certificateId: rotation.certificateId, certificateArn: rotation.certificateArn };
  }
  return rotation?.superseded;
}

/**
 * Takes a device out of the fleet: its certificate deactivated and detached from the policy and the
 * thing, the thing deleted (only if this inventory created it), the record kept as DECOMMISSIONED.
 * The credentials exchange then fails. Idempotent: every step treats "already done" as done.
 */
export async function decommissionDevice(
  serialNumber: string,
  deps: AdminDeps,
  actor = 'operator',
): Promise<DeviceView> {
  const device = await deps.store.getDevice(serialNumber);
  if (!device) throw new DeviceNotFoundError(`no device ${serialNumber}`);
  if (device.status === 'DECOMMISSIONED') return deviceView(device);
  if (device.status === 'RESET') {
    throw new DeviceNotActiveError(
      `device ${serialNumber} was reset and holds no certificate; register it again first`,
    );
  }
  // Held under a lease of its own: a registration resuming the record meanwhile would re-attach what
  // this detaches.
  const held = await hold(device, deps);
  try {
    // A rotation's certificate goes for good: nothing may keep working for a decommissioned device.
    await retireRotation(device, held, deps);
    return await retire(device, held, deps, actor);
  } catch (error) {
    // The operator's retry (idempotent) starts at once rather than waiting out this lease.
    await deps.store.releaseHold(held).catch(() => undefined);
    throw error;
  }
}

/** The decommission proper, under the hold: certificate off and detached, thing gone, record kept. */
async function retire(
  device: DeviceRecord,
  held: DeviceRecord,
  deps: AdminDeps,
  actor: string,
): Promise<DeviceView> {
  const { serialNumber } = device;
  const { iot } = deps;
  const { certificateId, certificateArn } = device;
  if (certificateId && certificateArn) {
    await iot.deactivateCertificate(certificateId);
    await Promise.all([
      iot.detachPolicy(deps.policyName, certificateArn),
      iot.detachThingPrincipal(device.thingName, certificateArn),
    ]);
  }
  if ((await iot.thingProvisioningId(device.thingName)) === device.provisioningId) {
    // DeleteThing refuses a thing whose detachment is still propagating in AWS IoT; past the budget the
    // operator's retry (idempotent) finishes the job.
    await retryWhileDetaching(() => iot.deleteThing(device.thingName), WHILE_DETACHING.thing, {
      until: Date.now() + DEFAULT_ROLLBACK_BUDGET_MS,
    }).catch((error: unknown) => {
      const name = error instanceof Error ? error.name : '';
      if (!WHILE_DETACHING.thing.includes(name)) throw error;
      throw new ServiceUnavailableError('the thing is still being detached in AWS IoT; retry', {
        retryAfterSeconds: 5,
        cause: error,
      });
    });
  }
  const now = (deps.clock ?? (() => new Date()))();
  if (!(await deps.store.markDecommissioned(held, now, actor))) {
    throw new RegistrationConflictError('the device changed while being decommissioned; retry', {
      retryAfterSeconds: 1,
    });
  }
  deps.logger.info('device decommissioned', { serialNumber, certificateId });
  return deviceView({
    ...device,
    status: 'DECOMMISSIONED',
    updatedAt: now.toISOString(),
    decommissionedAt: now.toISOString(),
  });
}

function deviceView(device: DeviceRecord): DeviceView {
  const at = device.decommissionedAt;
  return {
    serialNumber: device.serialNumber,
    thingName: device.thingName,
    status: device.status,
    batchId: device.batchId,
    claimId: device.claimId,
    ...(device.certificateId ? { certificateId: device.certificateId } : {}),
    attributes: device.attributes,
    createdAt: device.createdAt,
    updatedAt: device.updatedAt,
    ...(at ? { decommissionedAt: at } : {}),
    ...(device.failure ? { failure: { ...device.failure } } : {}),
    ...(device.resetAt ? { resetAt: device.resetAt } : {}),
    ...(device.rotatedAt ? { rotatedAt: device.rotatedAt } : {}),
  };
}

function claimView(claim: Claim): ClaimView {
  return {
    claimId: claim.claimId,
    batchId: claim.batchId,
    status: claim.status,
    expiresAt: new Date(claim.expiresAt * 1000).toISOString(),
    maxUses: claim.maxUses,
    usesLeft: claim.usesLeft,
    ...(claim.serialNumber ? { serialNumber: claim.serialNumber } : {}),
    allowServerKeygen: claim.allowServerKeygen,
    createdAt: claim.createdAt,
  };
}
