import type { IssuedCertificate } from '../inventory/inventory.js';
import type { Failure, Progress } from '../inventory/model.js';
import type { IotGateway } from '../iot/iot-gateway.js';
import { describeError, type Logger } from '../logger.js';

export interface RollbackTarget {
  policyName: string;
  thingName: string;
  certificate?: IssuedCertificate;
}

export interface RollbackOutcome {
  rollback: Failure['rollback'];
  leftovers: string[];
  /** What still exists after the rollback. */
  progress: Progress;
}

const ON_CONFLICT = { errors: ['DeleteConflictException'], attempts: 4 };

/**
 * Undoes a partial registration in the order AWS IoT requires: detach the policy and the thing,
 * set the certificate INACTIVE, delete it, then delete the thing (only if this registration created
 * it). Detachment propagates asynchronously in AWS IoT, so deletes that hit a conflict are retried
 * briefly. Anything that cannot be undone is reported as a leftover, never swallowed; the first
 * goal is that no certificate stays ACTIVE.
 */
export async function rollBack(
  iot: IotGateway,
  target: RollbackTarget,
  progress: Progress,
  logger: Logger,
  sleep: (ms: number) => Promise<void> = delay,
): Promise<RollbackOutcome> {
  const leftovers: string[] = [];
  const remaining: Progress = { ...progress };
  const attempt = async (leftover: string, operation: () => Promise<void>): Promise<boolean> => {
    try {
      await operation();
      return true;
    } catch (error) {
      leftovers.push(leftover);
      logger.error('rollback step failed', {
        leftover,
        error: error instanceof Error ? describeError(error) : error,
      });
      return false;
    }
  };

  const { certificate } = target;
  if (certificate) {
    // Detach even where the attach "failed": a timed-out attach may have landed. Detaching what is
    // not attached is a no-op.
    const [policyDetached, thingDetached] = await Promise.all([
      attempt(`policy-attachment:${target.policyName}`, () =>
        iot.detachPolicy(target.policyName, certificate.certificateArn),
      ),
      attempt(`thing-attachment:${target.thingName}`, () =>
        iot.detachThingPrincipal(target.thingName, certificate.certificateArn),
      ),
    ]);
    if (policyDetached) remaining.policyAttached = false;
    if (thingDetached) remaining.thingAttached = false;
    // A certificate that was never activated needs no deactivation (and the call that failed may be
    // UpdateCertificate itself).
    const deactivated =
      !progress.certificateActive ||
      (await attempt(`active-certificate:${certificate.certificateId}`, () =>
        iot.deactivateCertificate(certificate.certificateId),
      ));
    if (deactivated) remaining.certificateActive = false;
    if (deactivated && policyDetached && thingDetached) {
      const deleted = await attempt(`inactive-certificate:${certificate.certificateId}`, () =>
        retryWhileDetaching(() => iot.deleteCertificate(certificate.certificateId), ON_CONFLICT, sleep),
      );
      if (deleted) remaining.certificate = false;
    } else if (deactivated) {
      leftovers.push(`inactive-certificate:${certificate.certificateId}`);
    }
  }
  if (progress.thing) {
    if (remaining.thingAttached) {
      leftovers.push(`thing:${target.thingName}`);
    } else {
      const deleted = await attempt(`thing:${target.thingName}`, () =>
        retryWhileDetaching(() => iot.deleteThing(target.thingName), ON_CONFLICT, sleep),
      );
      if (deleted) remaining.thing = false;
    }
  }
  return { rollback: leftovers.length === 0 ? 'COMPLETED' : 'INCOMPLETE', leftovers, progress: remaining };
}

/**
 * AWS IoT propagates detachments asynchronously: a delete right after a detach may be refused with
 * one of `errors` for a moment. Retries with exponential backoff (250 ms, 500 ms, 1 s …).
 */
export async function retryWhileDetaching(
  operation: () => Promise<void>,
  options: { errors: string[]; attempts: number },
  sleep: (ms: number) => Promise<void> = delay,
): Promise<void> {
  for (let attemptNo = 1; ; attemptNo++) {
    try {
      return await operation();
    } catch (error) {
      const propagating = error instanceof Error && options.errors.includes(error.name);
      if (!propagating || attemptNo >= options.attempts) throw error;
      await sleep(250 * 2 ** (attemptNo - 1));
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
