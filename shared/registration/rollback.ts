import type { IssuedCertificate } from '../inventory/inventory.js';
import type { Failure, Progress } from '../inventory/model.js';
import type { IotGateway } from '../iot/iot-gateway.js';
import { describeError, type Logger } from '../logger.js';

export interface RollbackTarget {
  policyName: string;
  thingName: string;
  certificate?: Pick<IssuedCertificate, 'certificateId' | 'certificateArn'>;
}

export interface RollbackOutcome {
  rollback: Failure['rollback'];
  leftovers: string[];
  /** What still exists after the rollback. */
  progress: Progress;
}

/**
 * What AWS IoT answers while a detachment propagates, which AWS documents as taking up to several
 * seconds: DeleteCertificate refuses with DeleteConflictException, DeleteThing with
 * InvalidRequestException ("still attached") or DeleteConflictException.
 */
export const WHILE_DETACHING = {
  certificate: ['DeleteConflictException'],
  thing: ['InvalidRequestException', 'DeleteConflictException'],
};

export interface RollbackOptions {
  sleep?: (ms: number) => Promise<void>;
  /** Epoch ms after which deletes are no longer retried: what is left then goes to the reconciler. */
  deadline?: number;
  now?: () => number;
}

/** How long rollback waits for AWS IoT's detachments to propagate when no deadline is given. */
export const DEFAULT_ROLLBACK_BUDGET_MS = 8_000;

/**
 * Undoes a partial registration in the order AWS IoT requires: detach the policy and the thing,
 * set the certificate INACTIVE, delete it, then delete the thing (only if this registration created
 * it). Detachment propagates asynchronously in AWS IoT, so deletes refused meanwhile are retried
 * until the deadline. Anything that cannot be undone is reported as a leftover, never swallowed;
 * the first goal is that no certificate stays ACTIVE.
 */
export async function rollBack(
  iot: IotGateway,
  target: RollbackTarget,
  progress: Progress,
  logger: Logger,
  options: RollbackOptions = {},
): Promise<RollbackOutcome> {
  const now = options.now ?? Date.now;
  const retry = {
    sleep: options.sleep ?? delay,
    until: options.deadline ?? now() + DEFAULT_ROLLBACK_BUDGET_MS,
    now,
  };
  const leftovers: string[] = [];
  const remaining: Progress = { ...progress };
  const attempt = async (leftover: string, operation: () => Promise<void>): Promise<boolean> => {
    try {
      await operation();
      return true;
    } catch (error) {
      logger.error('rollback step failed', {
        leftover,
        error: error instanceof Error ? describeError(error) : error,
      });
      return false;
    }
  };

  const { certificate } = target;
  if (certificate) {
    const { certificateId, certificateArn } = certificate;
    // Detach even where the attach "failed": a timed-out attach may have landed. Detaching what is
    // not attached is a no-op.
    const [policyDetached, thingDetached] = await Promise.all([
      attempt(`policy-attachment:${target.policyName}`, () =>
        iot.detachPolicy(target.policyName, certificateArn),
      ),
      attempt(`thing-attachment:${target.thingName}`, () =>
        iot.detachThingPrincipal(target.thingName, certificateArn),
      ),
    ]);
    if (policyDetached) remaining.policyAttached = false;
    else leftovers.push(`policy-attachment:${target.policyName}`);
    if (thingDetached) remaining.thingAttached = false;
    else leftovers.push(`thing-attachment:${target.thingName}`);
    // `certificateActive` means activation was attempted: its answer may have been lost after it landed.
    const deactivated =
      !progress.certificateActive ||
      (await attempt(`active-certificate:${certificateId}`, () => iot.deactivateCertificate(certificateId)));
    // Delete even when deactivation failed: AWS IoT refuses to delete an ACTIVE certificate
    // (CertificateStateException), so a delete that succeeds proves the certificate was not active.
    const deleted =
      policyDetached &&
      thingDetached &&
      (await attempt(`certificate:${certificateId}`, () =>
        retryWhileDetaching(() => iot.deleteCertificate(certificateId), WHILE_DETACHING.certificate, retry),
      ));
    if (deleted) {
      remaining.certificate = false;
      remaining.certificateActive = false;
    } else if (deactivated) {
      remaining.certificateActive = false;
      leftovers.push(`inactive-certificate:${certificateId}`);
    } else {
      leftovers.push(`active-certificate:${certificateId}`);
    }
  }
  if (progress.thing) {
    if (remaining.thingAttached) {
      leftovers.push(`thing:${target.thingName}`);
    } else {
      const deleted = await attempt(`thing:${target.thingName}`, () =>
        retryWhileDetaching(() => iot.deleteThing(target.thingName), WHILE_DETACHING.thing, retry),
      );
      if (deleted) remaining.thing = false;
      else leftovers.push(`thing:${target.thingName}`);
    }
  }
  return { rollback: leftovers.length === 0 ? 'COMPLETED' : 'INCOMPLETE', leftovers, progress: remaining };
}

/** Assume the worst: detaching what is not attached, or deactivating what is inactive, is a no-op. */
const EVERYTHING_ON: Progress = {
  certificate: true,
  thing: false,
  policyAttached: true,
  thingAttached: true,
  certificateActive: true,
};

/**
 * Takes one certificate out of service for good, the thing left alone: detached from the policy and
 * the thing, deactivated, deleted. A rotation's old (or abandoned new) certificate, a stray.
 */
export function retireCertificate(
  iot: IotGateway,
  policyName: string,
  thingName: string,
  certificate: Pick<IssuedCertificate, 'certificateId' | 'certificateArn'>,
  logger: Logger,
  options: RollbackOptions = {},
): Promise<RollbackOutcome> {
  return rollBack(iot, { policyName, thingName, certificate }, EVERYTHING_ON, logger, options);
}

/**
 * AWS IoT propagates detachments asynchronously: a delete right after a detach may be refused with
 * one of `errors` for a while. Retries with exponential backoff (250 ms, 500 ms, 1 s, 2 s, 2 s …)
 * while the next try would still start before `until`.
 */
export async function retryWhileDetaching(
  operation: () => Promise<void>,
  errors: string[],
  options: { until: number; sleep?: (ms: number) => Promise<void>; now?: () => number },
): Promise<void> {
  const sleep = options.sleep ?? delay;
  const now = options.now ?? Date.now;
  const started = now();
  let waited = 0;
  for (let attemptNo = 1; ; attemptNo++) {
    try {
      return await operation();
    } catch (error) {
      const wait = Math.min(2_000, 250 * 2 ** (attemptNo - 1));
      const propagating = error instanceof Error && errors.includes(error.name);
      // Time is also counted as the sum of the waits, so an injected sleep that returns at once still ends.
      if (!propagating || Math.max(now(), started + waited) + wait > options.until) throw error;
      await sleep(wait);
      waited += wait;
    }
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
