import { randomUUID } from 'node:crypto';
import type { Inventory } from '../inventory/inventory.js';
import type { DeviceRecord, Failure } from '../inventory/model.js';
import type { IotGateway } from '../iot/iot-gateway.js';
import { describeError, type Logger } from '../logger.js';
import { metric } from '../metrics.js';
import { LEASE_MS } from './register-device.js';
import { rollBack } from './rollback.js';

export interface ReconcileDeps {
  inventory: Inventory;
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
}

export interface ReconcileReport {
  examined: number;
  rolledBack: number;
  incomplete: number;
  /** Taken by a registration or another reconciler in the meantime. */
  skipped: number;
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
  const report: ReconcileReport = { examined: 0, rolledBack: 0, incomplete: 0, skipped: 0, truncated: false };
  const timeLeft = () => (deps.remainingMs?.() ?? Number.POSITIVE_INFINITY) > 10_000;
  for (const status of ['PROVISIONING', 'FAILED'] as const) {
    let cursor: string | undefined;
    do {
      const before = new Date(clock().getTime() - (status === 'PROVISIONING' ? deps.staleAfterMs : 0));
      const page = await deps.inventory.listForReconcile(status, before, deps.pageSize ?? 25, cursor);
      for (const device of page.devices) {
        if (report.examined >= deps.maxDevices || !timeLeft()) {
          report.truncated = true;
          return report;
        }
        report.examined++;
        const outcome = await reconcileOne(device, deps, clock);
        report[outcome]++;
      }
      cursor = page.cursor;
    } while (cursor);
  }
  return report;
}

async function reconcileOne(
  device: DeviceRecord,
  deps: ReconcileDeps,
  clock: () => Date,
): Promise<'rolledBack' | 'incomplete' | 'skipped'> {
  const now = clock();
  if (device.status === 'PROVISIONING' && device.leaseUntil >= now.getTime()) return 'skipped';
  const taken: DeviceRecord = {
    ...device,
    status: 'PROVISIONING',
    leaseId: randomUUID(),
    leaseUntil: now.getTime() + LEASE_MS,
  };
  if (!(await deps.inventory.takeForReconcile(device, taken, now))) return 'skipped';
  const logger = deps.logger.child({ serialNumber: device.serialNumber, reconciler: true });
  try {
    const { certificateId, certificateArn, certificatePem } = device;
    // Ours only if it carries this record's provisioningId: a stranger's thing is never deleted.
    const ownsThing = (await deps.iot.thingProvisioningId(device.thingName)) === device.provisioningId;
    const outcome = await rollBack(
      deps.iot,
      {
        policyName: deps.policyName,
        thingName: device.thingName,
        ...(certificateId && certificateArn && certificatePem
          ? { certificate: { certificateId, certificateArn, certificatePem } }
          : {}),
      },
      // Assume the worst: detaching what is not attached is a no-op.
      {
        certificate: true,
        thing: ownsThing,
        policyAttached: true,
        thingAttached: true,
        certificateActive: true,
      },
      logger,
    );
    const failure: Failure = {
      step: 'reconcile',
      error: device.failure?.error ?? 'STALE_REGISTRATION',
      at: clock().toISOString(),
      rollback: outcome.rollback,
      leftovers: outcome.leftovers,
    };
    await deps.inventory.markFailed(taken, outcome.progress, failure, clock());
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
