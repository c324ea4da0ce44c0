import { randomUUID } from 'node:crypto';
import { type BatchView, batchView } from '../batches/batch-view.js';
import { mintClaim } from '../claims/mint-claim.js';
import {
  BatchNotFoundError,
  BatchRevokedError,
  ClaimNotFoundError,
  DeviceNotFoundError,
  InvalidRequestError,
  RegistrationConflictError,
  RegistrationInProgressError,
  ServiceUnavailableError,
  ThingNameTakenError,
  ThingNameTooLongError,
} from '../errors.js';
import type { Claim, DeviceRecord } from '../inventory/model.js';
import type { IotGateway } from '../iot/iot-gateway.js';
import type { Logger } from '../logger.js';
import { metric } from '../metrics.js';
import { LEASE_MS } from '../registration/register-device.js';
import { MAX_THING_NAME_LENGTH } from '../registration/request.js';
import {
  DEFAULT_ROLLBACK_BUDGET_MS,
  retryWhileDetaching,
  WHILE_DETACHING,
} from '../registration/rollback.js';
import type { AdminStore } from './admin-store.js';
import { reserveIdempotencyKey } from './idempotency.js';
import type {
  ClaimView,
  CreateClaimsResponse,
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
  return deviceView(device);
}

export async function listDevices(query: ListQuery, deps: AdminDeps): Promise<ListDevicesResponse> {
  const filter = {
    ...(query.batchId ? { batchId: query.batchId } : {}),
    ...(query.status ? { status: query.status } : {}),
  };
  const page = await deps.store.listDevices(filter, query.limit ?? 100, query.cursor);
  return {
    devices: page.items.map((device) => deviceView(device)),
    ...(page.cursor ? { cursor: page.cursor } : {}),
  };
}

/**
 * Takes a device out of the fleet: its certificate deactivated and detached from the policy and the
 * thing, the thing deleted (only if this inventory created it), the record kept as DECOMMISSIONED.
 * The credentials exchange then fails. Idempotent: every step treats "already done" as done.
 */
export async function decommissionDevice(serialNumber: string, deps: AdminDeps): Promise<DeviceView> {
  const device = await deps.store.getDevice(serialNumber);
  if (!device) throw new DeviceNotFoundError(`no device ${serialNumber}`);
  if (device.status === 'DECOMMISSIONED') return deviceView(device);
  const started = (deps.clock ?? (() => new Date()))();
  // Held under a lease of its own: a registration resuming the record meanwhile would re-attach what
  // this detaches.
  const held: DeviceRecord = { ...device, leaseId: randomUUID(), leaseUntil: started.getTime() + LEASE_MS };
  if (device.status === 'PROVISIONING' || !(await deps.store.holdForDecommission(device, held, started))) {
    throw new RegistrationInProgressError('this device is being worked on; retry shortly', {
      retryAfterSeconds: 5,
    });
  }
  try {
    return await retire(device, held, deps);
  } catch (error) {
    // The operator's retry (idempotent) starts at once rather than waiting out this lease.
    await deps.store.releaseHold(held).catch(() => undefined);
    throw error;
  }
}

/** The decommission proper, under the hold: certificate off and detached, thing gone, record kept. */
async function retire(device: DeviceRecord, held: DeviceRecord, deps: AdminDeps): Promise<DeviceView> {
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
  if (!(await deps.store.markDecommissioned(held, now))) {
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
