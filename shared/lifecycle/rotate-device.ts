import { randomUUID } from 'node:crypto';
import { parseCsr } from '../csr/parse-csr.js';
import {
  DeviceNotActiveError,
  DeviceProofInvalidError,
  DeviceProofReplayedError,
  InvalidRequestError,
  NoRotationPendingError,
  PublicKeyInUseError,
  RotationInProgressError,
  ServiceUnavailableError,
  ThrottledError,
} from '../errors.js';
import { DEVICE_ACTOR, type HistoryEntry } from '../history/history.js';
import type { IssuedCertificate } from '../inventory/inventory.js';
import { type DeviceRecord, type Rotation, recordedCertificate } from '../inventory/model.js';
import type { Endpoints } from '../iot/endpoints.js';
import type { IotGateway } from '../iot/iot-gateway.js';
import { createLogger, describeError, type Logger } from '../logger.js';
import { metric } from '../metrics.js';
import { LEASE_MS } from '../registration/register-device.js';
import { DEFAULT_ROLLBACK_BUDGET_MS, delay, retireCertificate } from '../registration/rollback.js';
import { invalid, nonceKey, readProof, verifyProof } from './device-proof.js';
import { type RotationStatus, rotationStatus } from './rotation-due.js';
import { type Lease, RotationRejectedError, type RotationStore } from './rotation-store.js';

export interface RotationSettings {
  policyName: string;
  roleAlias: string;
  rootCaPem: string;
  /** How long both certificates work when the device does not confirm the new one. */
  graceSeconds: number;
  /** An operator's request to rotate that is open longer than this is overdue. */
  overdueAfterSeconds: number;
}

export interface RotationDeps {
  store: RotationStore;
  iot: IotGateway;
  endpoints: () => Promise<Endpoints>;
  settings: RotationSettings;
  clock?: () => Date;
  newId?: () => string;
  logger?: Logger;
  /** Milliseconds left before the function is stopped (Lambda's getRemainingTimeInMillis). */
  remainingMs?: () => number;
}

/** What finishing a rotation needs (the device's confirmation, or the reconciler). */
export type RetirementDeps = Pick<RotationDeps, 'store' | 'iot' | 'clock' | 'newId' | 'remainingMs'> & {
  settings: Pick<RotationSettings, 'policyName'>;
};

export interface RotationCheck {
  serialNumber: string;
  thingName: string;
  certificateId: string;
  /** An operator asked this device to rotate (itself or its batch) since its certificate was issued. */
  rotationRequested: boolean;
  requestedAt?: string;
  /** A new certificate issued and waiting for the device's confirmation. */
  pending?: { certificateId: string; graceUntil: string };
}

export interface RotationResponse {
  serialNumber: string;
  thingName: string;
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  previousCertificateId: string;
  graceUntil: string;
  credentialsProvider: { endpoint: string; roleAlias: string; url: string };
  iotDataEndpoint: string;
  rootCaPem: string;
}

export interface ConfirmationResponse {
  serialNumber: string;
  certificateId: string;
  retiredCertificateId: string;
}

/**
 * GET /rotation: what the device should do about its certificate. A proof signed with its current key
 * (action "check"); read-only, so its nonce is not spent (a replay within the window only shows the
 * same answer again).
 */
export async function checkRotation(proof: unknown, deps: RotationDeps): Promise<RotationCheck> {
  const now = clockOf(deps)();
  const { serialNumber, certificateId } = readProof(proof);
  const device = await deps.store.getDevice(serialNumber);
  const certificate = device && currentOrPending(device, certificateId);
  if (!device || !certificate) throw invalid();
  await verifyProof(proof as string, certificate.certificatePem, { action: 'check', serialNumber }, now);
  if (device.status !== 'ACTIVE')
    throw new DeviceNotActiveError(`device ${serialNumber} is ${device.status}`);
  const batch = await deps.store.getBatch(device.batchId);
  const status = statusOf(device, batch, now, deps);
  return {
    serialNumber,
    thingName: device.thingName,
    certificateId: device.certificateId ?? certificateId,
    rotationRequested: status.due,
    ...(status.requestedAt ? { requestedAt: status.requestedAt } : {}),
    ...(status.pendingCertificateId && status.graceUntil
      ? { pending: { certificateId: status.pendingCertificateId, graceUntil: status.graceUntil } }
      : {}),
  };
}

/**
 * POST /rotation, phase one: a new certificate for a new key, proved by the current one.
 * 1. verify the proof against the device's current certificate (the one it names);
 * 2. asked again for the same new key (a lost answer): the same certificate, re-attached;
 * 3. start the rotation (ISSUING) under a lease, spending the proof's nonce and recording the new
 *    key as this device's, in one conditional transaction;
 * 4. retire a certificate an earlier rotation left waiting (the device came back with another key);
 * 5. create the certificate (ACTIVE), attach the policy and the thing in parallel, then commit it as
 *    PENDING with its grace period (history ROTATED). A failure before the commit rolls back the new
 *    certificate; the old one is never touched in this phase.
 */
export async function startRotation(
  proof: unknown,
  deps: RotationDeps,
): Promise<{ status: 200 | 201; body: RotationResponse }> {
  const clock = clockOf(deps);
  const now = clock();
  const { serialNumber, certificateId } = readProof(proof);
  const logger = (deps.logger ?? createLogger()).child({ serialNumber });
  const device = await deps.store.getDevice(serialNumber);
  if (!device || device.certificateId !== certificateId || !device.certificatePem) throw invalid();
  const claims = await verifyProof(
    proof as string,
    device.certificatePem,
    { action: 'rotate', serialNumber },
    now,
  );
  if (device.status !== 'ACTIVE')
    throw new DeviceNotActiveError(`device ${serialNumber} is ${device.status}`);
  if (claims.csr === undefined) throw invalidCsr();
  const csr = parseCsr(claims.csr);
  if (csr.publicKeySha256 === device.publicKeySha256) {
    throw new PublicKeyInUseError('the new key must be a new key, not the one the device holds now');
  }
  const spent = nonceKey(certificateId, claims.nonce);
  const previous = device.rotation;
  const endpoints = await deps.endpoints();

  if (previous?.state === 'PENDING' && previous.publicKeySha256 === csr.publicKeySha256) {
    if (!(await deps.store.spendNonce(spent, now))) throw replayed();
    await reattach(device.thingName, previous, deps);
    logger.info('rotation asked again: the same certificate', { certificateId: previous.certificateId });
    return { status: 200, body: rotationResponse(device, previous, endpoints, deps.settings) };
  }
  if (device.leaseUntil > now.getTime()) throw inProgress();
  if (previous?.state === 'RETIRING') throw inProgress();

  const newId = deps.newId ?? randomUUID;
  const lease: Lease = { leaseId: newId(), leaseUntil: now.getTime() + LEASE_MS };
  const superseded =
    previous?.state === 'PENDING' && previous.certificateId && previous.certificateArn
      ? { certificateId: previous.certificateId, certificateArn: previous.certificateArn }
      : previous?.superseded;
  const rotation: Rotation = {
    state: 'ISSUING',
    rotationId: newId(),
    publicKeySha256: csr.publicKeySha256,
    csrSha256: csr.sha256,
    startedAt: now.toISOString(),
    ...(superseded ? { superseded } : {}),
  };
  try {
    await deps.store.beginRotation(device, rotation, lease, spent, now);
  } catch (error) {
    if (!(error instanceof RotationRejectedError)) throw error;
    if (error.rejected.nonce) throw replayed();
    if (error.rejected.publicKey) throw new PublicKeyInUseError('this public key belongs to another device');
    throw inProgress();
  }
  const held: DeviceRecord = { ...device, ...lease, rotation };
  logger.info('rotation started', { rotationId: rotation.rotationId });

  if (superseded) {
    const outcome = await retireCertificate(
      deps.iot,
      deps.settings.policyName,
      held.thingName,
      superseded,
      logger,
      budget(deps),
    );
    if (outcome.rollback === 'INCOMPLETE') {
      // Kept as ISSUING with its lease released: the retry (or the reconciler) retires it again.
      await deps.store.release(held).catch(() => undefined);
      throw new ServiceUnavailableError('an earlier new certificate could not be retired yet; retry', {
        retryAfterSeconds: 5,
      });
    }
  }

  let certificate: IssuedCertificate | undefined;
  let step = 'create';
  try {
    checkTime(deps);
    certificate = await patiently(() => deps.iot.createCertificateFromCsr(csr.pem), deps);
    step = 'attach';
    const { certificateArn } = certificate;
    await Promise.all([
      patiently(() => deps.iot.attachPolicy(deps.settings.policyName, certificateArn), deps),
      patiently(() => deps.iot.attachThingPrincipal(held.thingName, certificateArn), deps),
    ]);
    step = 'commit';
  } catch (error) {
    await rollBackRotation(held, certificate, step, error, deps, clock, logger);
    throw error;
  }
  const pending: Rotation = {
    state: 'PENDING',
    rotationId: rotation.rotationId,
    publicKeySha256: rotation.publicKeySha256,
    csrSha256: rotation.csrSha256,
    startedAt: rotation.startedAt,
    ...certificate,
    graceUntil: new Date(clock().getTime() + deps.settings.graceSeconds * 1000).toISOString(),
  };
  try {
    await deps.store.commitRotation(held, pending, clock());
  } catch (error) {
    // A commit whose answer was lost may have landed. The abandon is the fence: once it lands no late
    // commit can, and only then is the certificate rolled back.
    const abandoned = await deps.store
      .abandonRotation(held, failedEntry('commit', error), clock())
      .catch(() => undefined);
    if (abandoned === true) {
      await rollBackRotation(held, certificate, 'commit', error, deps, clock, logger, { recorded: true });
      throw error;
    }
    const now = await deps.store.getDevice(serialNumber).catch(() => undefined);
    const ours = now?.rotation?.rotationId === rotation.rotationId ? now.rotation : undefined;
    if (ours?.state !== 'PENDING') {
      // Read, and not ours any more (an abandon that landed with its answer lost, or a take-over): the
      // commit, conditional on this rotation, can never land, so its certificate goes. Still ISSUING
      // (or unread): the commit may yet land; the lease lapses and the retry or the reconciler settles it.
      if (now && !ours && now.certificateId !== certificate.certificateId) {
        await rollBackRotation(held, certificate, 'commit', error, deps, clock, logger, { recorded: true });
      }
      throw new ServiceUnavailableError('the rotation could not be confirmed; retry', {
        retryAfterSeconds: 2,
        cause: error,
      });
    }
  }
  logger.info('rotation issued', {
    certificateId: certificate.certificateId,
    graceUntil: pending.graceUntil,
  });
  return { status: 201, body: rotationResponse(device, pending, endpoints, deps.settings) };
}

/**
 * POST /rotation/confirm, phase two: a proof signed with the NEW key, naming the new certificate. The
 * new certificate becomes the device's, then the old one is deactivated, detached and deleted.
 * Asked again after a lost answer: the same answer.
 */
export async function confirmRotation(proof: unknown, deps: RotationDeps): Promise<ConfirmationResponse> {
  const clock = clockOf(deps);
  const now = clock();
  const { serialNumber, certificateId } = readProof(proof);
  const logger = (deps.logger ?? createLogger()).child({ serialNumber });
  const device = await deps.store.getDevice(serialNumber);
  const certificate = device && currentOrPending(device, certificateId);
  if (!device || !certificate) throw invalid();
  const claims = await verifyProof(
    proof as string,
    certificate.certificatePem,
    { action: 'confirm', serialNumber },
    now,
  );
  // Before anything, even a repeat: a decommissioned device has nothing to confirm.
  if (device.status !== 'ACTIVE')
    throw new DeviceNotActiveError(`device ${serialNumber} is ${device.status}`);
  const spent = nonceKey(certificateId, claims.nonce);
  const rotation = device.rotation;
  if (device.certificateId === certificateId && rotation?.state === 'PENDING') {
    throw new DeviceProofInvalidError("a confirmation is signed with the new certificate's key");
  }
  if (device.certificateId === certificateId) {
    // Confirmed already (this is its repeat), or there was never a rotation to confirm.
    const retired = rotation?.state === 'RETIRING' ? rotation.certificateId : device.previousCertificateId;
    if (!device.rotatedAt || !retired)
      throw new NoRotationPendingError('no new certificate waits for confirmation');
    if (!(await deps.store.spendNonce(spent, now))) throw replayed();
    if (rotation?.state === 'RETIRING' && device.leaseUntil < now.getTime()) {
      await resumeRetirement(device, DEVICE_ACTOR, deps, logger);
    }
    return { serialNumber, certificateId, retiredCertificateId: retired };
  }
  if (device.leaseUntil > now.getTime()) throw inProgress();
  const retired = device.certificateId as string;
  const outcome = await promoteAndRetire(
    device,
    { event: 'CONFIRMED', actor: DEVICE_ACTOR },
    deps,
    logger,
    spent,
  );
  if (outcome === 'abandoned') {
    throw new NoRotationPendingError(
      'the new certificate can no longer be used; rotate again with the current key',
    );
  }
  return { serialNumber, certificateId, retiredCertificateId: retired };
}

/**
 * The new certificate becomes the device's (history `entry`), then the old one is retired; what
 * cannot be retired now stays RETIRING for the reconciler. The device's confirmation, or the
 * reconciler once the grace period ended.
 */
export async function promoteAndRetire(
  device: DeviceRecord,
  entry: HistoryEntry,
  deps: RetirementDeps,
  logger: Logger,
  nonce?: string,
): Promise<'promoted' | 'abandoned'> {
  const now = clockOf(deps)();
  const rotation = device.rotation as Rotation;
  // Never promote a certificate that cannot work (deleted or deactivated behind the record's back):
  // that would retire the one that does. The rotation is dropped instead; the device rotates again.
  const pending = await deps.iot.describeCertificate(rotation.certificateId as string);
  if (pending?.status !== 'ACTIVE') {
    logger.error('the new certificate of a pending rotation is not ACTIVE; rotation dropped', {
      certificateId: rotation.certificateId,
      status: pending?.status ?? 'missing',
    });
    await deps.store.abandonRotation(
      device,
      { event: 'ROTATION_FAILED', actor: entry.actor, step: 'promote', error: 'NEW_CERTIFICATE_NOT_ACTIVE' },
      now,
      'PENDING',
    );
    return 'abandoned';
  }
  const lease: Lease = { leaseId: (deps.newId ?? randomUUID)(), leaseUntil: now.getTime() + LEASE_MS };
  try {
    await deps.store.promote(
      device,
      lease,
      {
        ...entry,
        certificateId: rotation.certificateId as string,
        previousCertificateId: device.certificateId as string,
      },
      now,
      nonce,
    );
  } catch (error) {
    if (!(error instanceof RotationRejectedError)) throw error;
    if (error.rejected.nonce) throw replayed();
    throw inProgress();
  }
  const retiring = recordedCertificate(device);
  const held: DeviceRecord = {
    ...device,
    ...lease,
    rotation: { ...rotation, state: 'RETIRING', ...(retiring ?? {}) },
  };
  logger.info('rotation confirmed', { by: entry.actor, event: entry.event });
  await retireOld(held, entry.actor, deps, logger);
  return 'promoted';
}

/** A RETIRING rotation whose retirement did not finish (an AWS IoT fault, a dead function): again. */
export async function resumeRetirement(
  device: DeviceRecord,
  actor: string,
  deps: RetirementDeps,
  logger: Logger,
): Promise<boolean> {
  const now = clockOf(deps)();
  const lease: Lease = { leaseId: (deps.newId ?? randomUUID)(), leaseUntil: now.getTime() + LEASE_MS };
  if (!(await deps.store.takeRotation(device, lease, now))) return false;
  return retireOld({ ...device, ...lease }, actor, deps, logger);
}

async function retireOld(
  held: DeviceRecord,
  actor: string,
  deps: RetirementDeps,
  logger: Logger,
): Promise<boolean> {
  const old = held.rotation;
  const clock = clockOf(deps);
  if (old?.certificateId && old.certificateArn) {
    const outcome = await retireCertificate(
      deps.iot,
      deps.settings.policyName,
      held.thingName,
      { certificateId: old.certificateId, certificateArn: old.certificateArn },
      logger,
      budget(deps),
    );
    if (outcome.rollback === 'INCOMPLETE') {
      metric(logger, 'RollbackIncomplete', { leftovers: outcome.leftovers, rotation: true });
      // RETIRING stays, due at once: the reconciler retires it on its next run.
      await deps.store.release(held).catch(() => undefined);
      return false;
    }
  }
  const entry: HistoryEntry = {
    event: 'CERTIFICATE_RETIRED',
    actor,
    ...(old?.certificateId ? { certificateId: old.certificateId } : {}),
  };
  if (!(await deps.store.finishRetirement(held, entry, clock()))) {
    logger.warn('the retirement was taken over meanwhile');
    return false;
  }
  logger.info('old certificate retired', { certificateId: old?.certificateId });
  return true;
}

/**
 * A rotation that failed before its commit: the new certificate rolled back (detached, deactivated,
 * deleted), then the rotation removed (history ROTATION_FAILED). Already removed when `recorded`.
 * If removing it fails, the lease lapses and the reconciler removes it.
 */
async function rollBackRotation(
  held: DeviceRecord,
  certificate: IssuedCertificate | undefined,
  step: string,
  error: unknown,
  deps: RotationDeps,
  clock: () => Date,
  logger: Logger,
  options: { recorded?: boolean } = {},
): Promise<void> {
  logger.error('rotation failed; rolling back the new certificate', {
    step,
    error: error instanceof Error ? describeError(error) : String(error),
  });
  const outcome = certificate
    ? await retireCertificate(
        deps.iot,
        deps.settings.policyName,
        held.thingName,
        certificate,
        logger,
        budget(deps),
      )
    : { rollback: 'COMPLETED' as const, leftovers: [] };
  metric(logger, outcome.rollback === 'COMPLETED' ? 'RotationRolledBack' : 'RollbackIncomplete', {
    step,
    leftovers: outcome.leftovers,
  });
  if (options.recorded) return;
  await deps.store
    .abandonRotation(
      held,
      { ...failedEntry(step, error), rollback: outcome.rollback, leftovers: outcome.leftovers },
      clock(),
    )
    .catch((recordError: unknown) =>
      logger.error('could not record the failed rotation', { error: recordError }),
    );
}

function failedEntry(step: string, error: unknown): HistoryEntry {
  return {
    event: 'ROTATION_FAILED',
    actor: DEVICE_ACTOR,
    step,
    error:
      error instanceof Error && 'code' in error
        ? String(error.code)
        : error instanceof Error
          ? error.name
          : 'Unknown',
  };
}

/** Re-attaches a pending certificate (idempotent in AWS IoT): its first attempt's answer was lost. */
async function reattach(thingName: string, rotation: Rotation, deps: RotationDeps): Promise<void> {
  const arn = rotation.certificateArn as string;
  await Promise.all([
    deps.iot.attachPolicy(deps.settings.policyName, arn),
    deps.iot.attachThingPrincipal(thingName, arn),
  ]);
}

/** The device's certificate a proof may name: its current one, or the new one waiting for confirmation. */
function currentOrPending(
  device: DeviceRecord,
  certificateId: string,
): { certificatePem: string } | undefined {
  if (device.certificateId === certificateId && device.certificatePem)
    return { certificatePem: device.certificatePem };
  const rotation = device.rotation;
  if (rotation?.state === 'PENDING' && rotation.certificateId === certificateId && rotation.certificatePem) {
    return { certificatePem: rotation.certificatePem };
  }
  return undefined;
}

export function statusOf(
  device: DeviceRecord,
  batch: Parameters<typeof rotationStatus>[1],
  now: Date,
  deps: { settings: Pick<RotationSettings, 'overdueAfterSeconds'> },
): RotationStatus {
  return rotationStatus(device, batch, now, deps.settings.overdueAfterSeconds * 1000);
}

function rotationResponse(
  device: DeviceRecord,
  rotation: Rotation,
  endpoints: Endpoints,
  settings: RotationSettings,
): RotationResponse {
  return {
    serialNumber: device.serialNumber,
    thingName: device.thingName,
    certificateId: rotation.certificateId as string,
    certificateArn: rotation.certificateArn as string,
    certificatePem: rotation.certificatePem as string,
    previousCertificateId: device.certificateId as string,
    graceUntil: rotation.graceUntil as string,
    credentialsProvider: {
      endpoint: endpoints.credentialsProvider,
      roleAlias: settings.roleAlias,
      url: `https://${endpoints.credentialsProvider}/role-aliases/${settings.roleAlias}/credentials`,
    },
    iotDataEndpoint: endpoints.data,
    rootCaPem: settings.rootCaPem,
  };
}

/** A creation or attachment that AWS IoT throttles is tried twice more, 0.5-1.5 s apart, while time allows. */
async function patiently<T>(call: () => Promise<T>, deps: Pick<RotationDeps, 'remainingMs'>): Promise<T> {
  for (let retry = 1; ; retry++) {
    try {
      return await call();
    } catch (error) {
      const timeLeft = deps.remainingMs?.() ?? Number.POSITIVE_INFINITY;
      if (!(error instanceof ThrottledError) || retry > 2 || timeLeft < 10_000) throw error;
      await delay(500 + Math.random() * 1_000);
    }
  }
}

function checkTime(deps: Pick<RotationDeps, 'remainingMs'>): void {
  if ((deps.remainingMs?.() ?? Number.POSITIVE_INFINITY) < 4_000) {
    throw new ServiceUnavailableError('not enough time left to finish; retry', { retryAfterSeconds: 2 });
  }
}

function budget(deps: Pick<RotationDeps, 'remainingMs'>): { deadline: number } {
  const left = (deps.remainingMs?.() ?? Number.POSITIVE_INFINITY) - 3_000;
  return { deadline: Date.now() + Math.max(0, Math.min(DEFAULT_ROLLBACK_BUDGET_MS, left)) };
}

function clockOf(deps: Pick<RotationDeps, 'clock'>): () => Date {
  return deps.clock ?? (() => new Date());
}

const inProgress = () =>
  new RotationInProgressError('this device is being worked on; retry shortly', { retryAfterSeconds: 2 });
const replayed = () => new DeviceProofReplayedError('this proof was used before; sign a new one');
const invalidCsr = () =>
  new InvalidRequestError("a rotation proof carries the new key's CSR in its payload's csr", {
    extensions: { errors: [{ pointer: '/proof/payload/csr', detail: 'required for action "rotate"' }] },
  });
