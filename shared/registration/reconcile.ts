import { randomUUID, X509Certificate } from 'node:crypto';
import { publicKeySha256 } from '../csr/parse-csr.js';
import { RECONCILER_ACTOR } from '../history/history.js';
import type { Inventory } from '../inventory/inventory.js';
import {
  type DeviceRecord,
  type Failure,
  NOTHING_DONE,
  type Progress,
  recordedCertificate,
} from '../inventory/model.js';
import type { CertificateSummary, IotGateway } from '../iot/iot-gateway.js';
import { promoteAndRetire, resumeRetirement } from '../lifecycle/rotate-device.js';
import type { RotationStore } from '../lifecycle/rotation-store.js';
import { describeError, type Logger } from '../logger.js';
import { metric } from '../metrics.js';
import { LEASE_MS } from './register-device.js';
import { retireCertificate, rollBack } from './rollback.js';

export interface ReconcileDeps {
  inventory: Inventory;
  /** The same records as rotation sees them: rotations whose attempt died, or whose grace period ended. */
  rotations: RotationStore;
  iot: IotGateway;
  policyName: string;
  logger: Logger;
  clock?: () => Date;
  /** A PROVISIONING record untouched for this long (and past its lease) is stale. */
  staleAfterMs: number;
  /** At most this many devices per run. */
  maxDevices: number;
  pageSize?: number;
  /** Stop starting new work with less than this left (Lambda's getRemainingTimeInMillis). */
  remainingMs?: () => number;
  /** How far back the certificate sweep looks (by creation date); default SWEEP_HORIZON_MS. */
  sweepHorizonMs?: number;
  /** At most this many certificates examined per run; default 1,000. */
  maxCertificates?: number;
}

/** The sweep looks at certificates created within the last day: an attempt lives at most LEASE_MS. */
export const SWEEP_HORIZON_MS = 24 * 3600_000;
/** Clock skew allowed between AWS IoT's creationDate and the function's clock. */
const ATTEMPT_WINDOW_SLACK_MS = 60_000;
/** The reconciler's lease on a record: longer than its slowest rollback (five IoT calls, each up to ~10 s with retries, plus detach propagation), so that no device attempt takes the record over while it still works. */
export const RECONCILE_LEASE_MS = 5 * 60_000;
/** Younger certificates may belong to a live attempt that has not recorded them yet. */
export const SWEEP_MIN_AGE_MS = 2 * LEASE_MS;

export interface ReconcileReport {
  examined: number;
  rolledBack: number;
  incomplete: number;
  /** Taken by a registration or another reconciler in the meantime. */
  skipped: number;
  /** Certificates this backend created that no record references, retired by the sweep. */
  certificatesRetired: number;
  /** Such certificates the sweep could not retire yet (the next run tries again). */
  certificatesLeft: number;
  /** Rotations finished: grace periods ended, retirements resumed, dead attempts abandoned. */
  rotationsSettled: number;
  /** Rotations it could not settle yet (the next run tries again). */
  rotationsLeft: number;
  /** The run stopped at maxDevices or for lack of time; the next run continues. */
  truncated: boolean;
}

/**
 * Finds registrations stuck in PROVISIONING past their lease (their attempt died: a timeout, a
 * crash) and rollbacks left INCOMPLETE, takes each under a fresh lease, and rolls it back in AWS's
 * order. The device's next retry with its claim then takes the FAILED record over and registers
 * afresh. Idempotent (every undo treats "already gone" as done), paginated, bounded per run, and
 * safe beside live registrations: a record is only touched under a lease its owner has lost.
 */
export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const clock = deps.clock ?? (() => new Date());
  const report: ReconcileReport = {
    examined: 0,
    rolledBack: 0,
    incomplete: 0,
    skipped: 0,
    certificatesRetired: 0,
    certificatesLeft: 0,
    rotationsSettled: 0,
    rotationsLeft: 0,
    truncated: false,
  };
  const timeLeft = () => (deps.remainingMs?.() ?? Number.POSITIVE_INFINITY) > 10_000;
  // The device passes stop at maxDevices or when time runs short; the sweep runs in any case, on
  // its own bound, so a backlog of stuck records never starves it.
  devices: for (const status of ['PROVISIONING', 'FAILED'] as const) {
    let cursor: string | undefined;
    do {
      // Also between pages: a filter (FAILED: only INCOMPLETE rollbacks) can empty many in a row.
      if (!timeLeft()) {
        report.truncated = true;
        break devices;
      }
      const before = new Date(clock().getTime() - (status === 'PROVISIONING' ? deps.staleAfterMs : 0));
      const page = await deps.inventory.listForReconcile(status, before, deps.pageSize ?? 25, cursor);
      for (const device of page.devices) {
        if (report.examined >= deps.maxDevices || !timeLeft()) {
          report.truncated = true;
          break devices;
        }
        report.examined++;
        const outcome = await reconcileOne(device, deps, clock);
        report[outcome]++;
      }
      cursor = page.cursor;
    } while (cursor);
  }
  await settleRotations(deps, clock, timeLeft, report);
  await sweepCertificates(deps, clock, timeLeft, report);
  return report;
}

/**
 * Rotations nobody will finish otherwise: a PENDING one whose grace period ended (the new certificate
 * becomes the device's and the old one is retired, history GRACE_ENDED), a RETIRING one whose
 * retirement did not finish, and an ISSUING one whose attempt died (an earlier certificate it was
 * replacing is retired, the rotation removed; a certificate it created is the sweep's, by its key).
 */
async function settleRotations(
  deps: ReconcileDeps,
  clock: () => Date,
  timeLeft: () => boolean,
  report: ReconcileReport,
): Promise<void> {
  const store = deps.rotations;
  const rotationDeps = { store, iot: deps.iot, settings: { policyName: deps.policyName }, clock };
  for (const state of ['RETIRING', 'PENDING', 'ISSUING'] as const) {
    let cursor: string | undefined;
    do {
      if (!timeLeft()) {
        report.truncated = true;
        return;
      }
      const page = await store.listRotationsDue(state, clock(), deps.pageSize ?? 25, cursor);
      for (const device of page.devices) {
        if (!timeLeft()) {
          report.truncated = true;
          return;
        }
        const logger = deps.logger.child({ serialNumber: device.serialNumber, reconciler: true });
        try {
          if (device.leaseUntil >= clock().getTime()) continue;
          let settled: boolean;
          if (state === 'PENDING') {
            await promoteAndRetire(
              device,
              { event: 'GRACE_ENDED', actor: RECONCILER_ACTOR },
              rotationDeps,
              logger,
            );
            settled = true;
          } else if (state === 'RETIRING') {
            settled = await resumeRetirement(device, RECONCILER_ACTOR, rotationDeps, logger);
          } else {
            settled = await abandonStaleRotation(device, deps, clock, logger);
          }
          report[settled ? 'rotationsSettled' : 'rotationsLeft']++;
        } catch (error) {
          logger.error('settling a rotation failed; the next run retries', {
            error: error instanceof Error ? describeError(error) : String(error),
          });
          report.rotationsLeft++;
        }
      }
      cursor = page.cursor;
    } while (cursor);
  }
}

async function abandonStaleRotation(
  device: DeviceRecord,
  deps: ReconcileDeps,
  clock: () => Date,
  logger: Logger,
): Promise<boolean> {
  const now = clock();
  const lease = { leaseId: randomUUID(), leaseUntil: now.getTime() + RECONCILE_LEASE_MS };
  if (!(await deps.rotations.takeRotation(device, lease, now))) return false;
  const held = { ...device, ...lease };
  const superseded = device.rotation?.superseded;
  if (superseded) {
    const outcome = await retireCertificate(deps.iot, deps.policyName, device.thingName, superseded, logger);
    if (outcome.rollback === 'INCOMPLETE') {
      await deps.rotations.release(held);
      return false;
    }
  }
  return deps.rotations.abandonRotation(
    held,
    { event: 'ROTATION_FAILED', actor: RECONCILER_ACTOR, step: 'reconcile', error: 'STALE_ROTATION' },
    clock(),
  );
}

/**
 * Finds certificates this backend created that no device record references (an attempt died between
 * CreateCertificateFromCsr and recording it, or a retired certificate could not be deleted) and
 * retires them. A certificate is ours if its public key has a `key#` item: every key is recorded
 * before a certificate is requested for it. Newest first, within SWEEP_HORIZON_MS, bounded per run.
 */
async function sweepCertificates(
  deps: ReconcileDeps,
  clock: () => Date,
  timeLeft: () => boolean,
  report: ReconcileReport,
): Promise<void> {
  const now = clock().getTime();
  const oldest = now - (deps.sweepHorizonMs ?? SWEEP_HORIZON_MS);
  let examined = 0;
  let marker: string | undefined;
  do {
    const page = await deps.iot.listCertificates(marker);
    for (const summary of page.certificates) {
      const created = summary.creationDate.getTime();
      if (created > now - SWEEP_MIN_AGE_MS) continue;
      if (created < oldest) return;
      if (examined >= (deps.maxCertificates ?? 1_000) || !timeLeft()) {
        report.truncated = true;
        return;
      }
      examined++;
      const outcome = await sweepOne(summary, deps, now);
      if (outcome === 'retired') report.certificatesRetired++;
      if (outcome === 'left') report.certificatesLeft++;
    }
    marker = page.marker;
  } while (marker);
}

async function sweepOne(
  summary: CertificateSummary,
  deps: ReconcileDeps,
  now: number,
): Promise<'retired' | 'left' | 'kept'> {
  const logger = deps.logger.child({ certificateId: summary.certificateId, reconciler: true });
  try {
    if (await deps.inventory.isCertificateReferenced(summary.certificateId)) return 'kept';
    const certificate = await deps.iot.describeCertificate(summary.certificateId);
    if (!certificate) return 'kept';
    const spki = new X509Certificate(certificate.certificatePem).publicKey.export({
      type: 'spki',
      format: 'der',
    });
    const key = await deps.inventory.publicKeyRecord(publicKeySha256(spki));
    // Ours only if this backend recorded the key, and the certificate was created while one of its
    // attempts for that key could have asked for it (not one issued elsewhere for the same key).
    const created = certificate.creationDate.getTime();
    const from = key ? Date.parse(key.createdAt) - ATTEMPT_WINDOW_SLACK_MS : 0;
    const until = key
      ? Date.parse(key.lastAttemptAt ?? key.createdAt) + LEASE_MS + ATTEMPT_WINDOW_SLACK_MS
      : 0;
    if (!key || created < from || created > until) return 'kept';
    const owner = key.owner;
    const device = await deps.inventory.getDevice(owner);
    // A live attempt (a registration, a rotation) may be about to record it.
    if (device && device.leaseUntil >= now) return 'kept';
    const id = certificate.certificateId;
    if (device?.certificateId === id) return 'kept';
    // A rotation's new (or old) certificate, or the one it replaces: the rotation settles it.
    if (device?.rotation?.certificateId === id || device?.rotation?.superseded?.certificateId === id) {
      return 'kept';
    }
    // In use on a thing that is not the owner's: someone else's, whatever its key says.
    const things = await deps.iot.principalThings(certificate.certificateArn);
    if (things.some((thing) => thing !== device?.thingName)) return 'kept';
    const outcome = await rollBack(
      deps.iot,
      { policyName: deps.policyName, thingName: device?.thingName ?? owner, certificate },
      { ...WORST_CASE, thing: false },
      logger,
    );
    metric(logger, outcome.rollback === 'COMPLETED' ? 'ReconcilerRetiredCertificate' : 'RollbackIncomplete', {
      leftovers: outcome.leftovers,
    });
    return outcome.rollback === 'COMPLETED' ? 'retired' : 'left';
  } catch (error) {
    logger.error('sweeping a certificate failed; the next run retries', {
      error: error instanceof Error ? describeError(error) : String(error),
    });
    return 'left';
  }
}

/** A certificate's id is the last part of its ARN (arn:aws:iot:<region>:<account>:cert/<id>). */
function strayCertificate(certificateArn: string): { certificateId: string; certificateArn: string } {
  return { certificateId: certificateArn.slice(certificateArn.lastIndexOf('/') + 1), certificateArn };
}

/** Assume the worst: detaching what is not attached is a no-op. */
const WORST_CASE: Progress = {
  certificate: true,
  thing: true,
  policyAttached: true,
  thingAttached: true,
  certificateActive: true,
};

async function reconcileOne(
  device: DeviceRecord,
  deps: ReconcileDeps,
  clock: () => Date,
): Promise<'rolledBack' | 'incomplete' | 'skipped'> {
  const now = clock();
  if (device.leaseUntil >= now.getTime()) return 'skipped';
  const taken: DeviceRecord = {
    ...device,
    status: 'PROVISIONING',
    leaseId: randomUUID(),
    leaseUntil: now.getTime() + RECONCILE_LEASE_MS,
  };
  const logger = deps.logger.child({ serialNumber: device.serialNumber, reconciler: true });
  try {
    // Inside the try: a throttled or refused take must not end the run before the others and the sweep.
    if (!(await deps.inventory.takeForReconcile(device, taken, now))) return 'skipped';
    const certificate = recordedCertificate(device);
    const certificateId = certificate?.certificateId;
    // Ours only if it carries this record's provisioningId: a stranger's thing is never deleted.
    const ownsThing = (await deps.iot.thingProvisioningId(device.thingName)) === device.provisioningId;
    // A certificate on our thing that the record does not name: an attempt died between attaching it
    // and its commit (the commit records it). Only this backend attaches to its things, and the
    // record is not ACTIVE: retired like the recorded one, so that the thing can go too.
    const strays = ownsThing
      ? (await deps.iot.thingPrincipals(device.thingName)).filter(
          (arn) => arn !== certificate?.certificateArn,
        )
      : [];
    for (const certificateArn of strays) {
      const strayOne = strayCertificate(certificateArn);
      // As the sweep: never one a record names, or one also on another thing (not ours, whatever
      // put it on this one).
      if (await deps.inventory.isCertificateReferenced(strayOne.certificateId)) continue;
      const things = await deps.iot.principalThings(certificateArn);
      if (things.some((thing) => thing !== device.thingName)) continue;
      const stray = await rollBack(
        deps.iot,
        { policyName: deps.policyName, thingName: device.thingName, certificate: strayOne },
        { ...WORST_CASE, thing: false },
        logger,
      );
      metric(logger, stray.rollback === 'COMPLETED' ? 'ReconcilerRetiredCertificate' : 'RollbackIncomplete', {
        certificateArn,
        leftovers: stray.leftovers,
      });
    }
    const outcome = await rollBack(
      deps.iot,
      {
        policyName: deps.policyName,
        thingName: device.thingName,
        ...(certificate ? { certificate } : {}),
      },
      // Without a recorded certificate, nothing of the record's is attached (strays are retired above).
      // A reset device's thing holds its identity and data: never deleted here.
      { ...(certificate ? WORST_CASE : NOTHING_DONE), thing: ownsThing && !device.keepThing },
      logger,
    );
    const failure: Failure = {
      step: 'reconcile',
      error: device.failure?.error ?? 'STALE_REGISTRATION',
      at: clock().toISOString(),
      rollback: outcome.rollback,
      leftovers: outcome.leftovers,
      ...(certificateId ? { certificateId } : {}),
    };
    await deps.inventory.markFailed(taken, outcome.progress, failure, clock(), certificate, RECONCILER_ACTOR);
    metric(logger, outcome.rollback === 'COMPLETED' ? 'ReconcilerRolledBack' : 'RollbackIncomplete', {
      leftovers: outcome.leftovers,
    });
    return outcome.rollback === 'COMPLETED' ? 'rolledBack' : 'incomplete';
  } catch (error) {
    logger.error('reconciling a device failed; the next run retries', {
      error: error instanceof Error ? describeError(error) : String(error),
    });
    return 'incomplete';
  }
}
