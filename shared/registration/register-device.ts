import { randomUUID } from 'node:crypto';
import { assertClaimUsable, type ClaimUse } from '../claims/claim-rules.js';
import { hashClaimToken } from '../claims/token.js';
import { type ParsedCsr, parseCsr } from '../csr/parse-csr.js';
import { generateServerKey } from '../csr/server-key.js';
import {
  AppError,
  ClaimRevokedError,
  ClaimTokenUnknownError,
  PublicKeyInUseError,
  RegistrationConflictError,
  RegistrationInProgressError,
  SerialAlreadyRegisteredError,
  ServiceUnavailableError,
  ThingNameTakenError,
  ThingNameTooLongError,
  ThrottledError,
} from '../errors.js';
import { type Inventory, type IssuedCertificate, ReservationRejectedError } from '../inventory/inventory.js';
import {
  type Claim,
  type DeviceRecord,
  type Failure,
  NOTHING_DONE,
  type Progress,
  recordedCertificate,
  SERVER_KEYGEN,
} from '../inventory/model.js';
import type { Endpoints } from '../iot/endpoints.js';
import type { IotGateway } from '../iot/iot-gateway.js';
import { createLogger, describeError, type Logger } from '../logger.js';
import { metric } from '../metrics.js';
import { MAX_THING_NAME_LENGTH, type RegisterRequest } from './request.js';
import { DEFAULT_ROLLBACK_BUDGET_MS, delay, rollBack } from './rollback.js';

export interface RegistrationSettings {
  policyName: string;
  roleAlias: string;
  rootCaPem: string;
  /** Used when the claim names no prefix of its own. */
  defaultThingNamePrefix: string;
}

export interface RegistrationDeps {
  inventory: Inventory;
  iot: IotGateway;
  endpoints: () => Promise<Endpoints>;
  settings: RegistrationSettings;
  clock?: () => Date;
  newId?: () => string;
  logger?: Logger;
  /** Milliseconds left before the function is stopped (Lambda's getRemainingTimeInMillis). */
  remainingMs?: () => number;
}

export interface RegistrationResponse {
  thingName: string;
  serialNumber: string;
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  credentialsProvider: { endpoint: string; roleAlias: string; url: string };
  iotDataEndpoint: string;
  rootCaPem: string;
  /** Only for server-side key generation, and only in the response that created it. */
  privateKey?: string;
}

export interface RegistrationResult {
  /** 201 for a new or resumed registration, 200 for a replay of a finished one. */
  status: 200 | 201;
  body: RegistrationResponse;
}

/** How long an attempt owns the device record: longer than the function's 29 s timeout. */
export const LEASE_MS = 60_000;
/** A step is not started with less time than this left; the attempt stops and rolls back instead. */
export const MIN_STEP_MS = 4_000;
/**
 * A creation or an attachment that AWS IoT still throttles after the SDK's retries is tried this many
 * more times, 0.5-1.5 s apart, while the function has time, before the attempt pauses (or, after the
 * commit, sends the device back for a replay): the door admits registrations at the quota's rate, so
 * such throttling is mostly bunching that passes within seconds, and waiting here costs less than
 * sending the device back through the door.
 */
export const THROTTLED_CALL_RETRIES = 2;
/** How long after a server-keygen registration completes its device may ask for a new key (lost response). */
export const KEYGEN_REISSUE_WINDOW_MS = 10 * 60_000;

/** What this attempt asks AWS IoT to certify. */
interface AttemptKey {
  csrPem: string;
  /** SHA-256 of the device's CSR, or SERVER_KEYGEN. */
  csrSha256: string;
  publicKeySha256: string;
  /** Only for server-side key generation. */
  privateKeyPem?: string;
}

/**
 * What happens on POST /register:
 * 1. check the CSR (structure, proof of possession, key type) before anything is read or written;
 * 2. read the claim and the device in parallel, then the endpoints (cached per container) and, for
 *    server-side key generation, the key (on the thread pool) once the claim allows it; a finished
 *    registration with the same claim and key is replayed (200);
 * 3. spend the claim, reserve the device, its thing name (for life) and its public key in one
 *    conditional transaction (race-proof), or take the record over without spending a use, under
 *    the identity rules of `assertTakeable` (docs/registration.md);
 * 4. create the certificate (ACTIVE) and the thing in parallel; a resumed attempt reuses its
 *    certificate if the CSR is the same and it still exists, and retires it first if not;
 * 5. commit (record the certificate and mark the device ACTIVE, one transaction) while attaching the
 *    policy and the thing, in parallel: four sequential round trips in all.
 * A failure before the commit rolls back what AWS IoT holds and records the outcome (and the
 * certificate, while it exists) on the device; AWS IoT throttling there pauses instead (progress kept,
 * 429 with Retry-After), so the retry does not redo the work. After the commit nothing is rolled back:
 * an attachment that failed is noted on the record and re-attached by the device's retry (a replay).
 */
export async function registerDevice(
  request: RegisterRequest,
  deps: RegistrationDeps,
): Promise<RegistrationResult> {
  const clock = deps.clock ?? (() => new Date());
  const logger = (deps.logger ?? createLogger()).child({ serialNumber: request.serialNumber });
  const csr = request.csr === undefined ? undefined : parseCsr(request.csr);
  const tokenHash = hashClaimToken(request.claimToken);
  const now = clock();

  const [claim, existing] = await Promise.all([
    deps.inventory.getClaim(tokenHash),
    deps.inventory.getDevice(request.serialNumber),
  ]);
  if (!claim) throw new ClaimTokenUnknownError('no claim matches this token');
  const use: ClaimUse = { serialNumber: request.serialNumber, serverKeygen: csr === undefined, now };
  // A server key costs CPU: made only for a claim that may have one (the rules are checked again,
  // atomically, by the transaction).
  if (!csr) assertClaimUsable(claim, use, { spendsAUse: false });
  // Endpoints only once a claim matches: unknown tokens cannot spend the DescribeEndpoint quota.
  // Before any write, so that a registration never completes without an answer to give.
  const [endpoints, key] = await Promise.all([
    deps.endpoints(),
    csr
      ? ({ csrPem: csr.pem, csrSha256: csr.sha256, publicKeySha256: csr.publicKeySha256 } as AttemptKey)
      : keygenAttempt(),
  ]);

  if (existing && isReplay(existing, tokenHash, csr)) {
    await reattach(existing, deps, logger);
    logger.info('registration replayed', { certificateId: existing.certificateId });
    return { status: 200, body: responseFor(existing, existing, endpoints, deps.settings) };
  }

  let device: DeviceRecord;
  try {
    if (existing?.status === 'RESET') {
      // A repaired device registers again: same thing and thing name, a new claim bound to its serial.
      assertReRegistrable(existing, claim, now);
      assertClaimUsable(claim, use, { spendsAUse: true });
      device = reRegistration(existing, request, claim, key, deps, now);
      await deps.inventory.reRegister(claim, existing, device, now);
      logger.info('reset device registering again', { claimId: claim.claimId, batchId: claim.batchId });
    } else if (existing) {
      assertTakeable(existing, tokenHash, key, claim, now);
      assertClaimUsable(claim, use, { spendsAUse: false });
      device = nextAttempt(existing, request, key, deps, now);
      await deps.inventory.takeOver(existing, device, now, {
        singleUseClaim: key.csrSha256 === SERVER_KEYGEN,
      });
      logger.info('registration taken over', { from: existing.status, progress: existing.progress });
    } else {
      assertClaimUsable(claim, use, { spendsAUse: false });
      device = draftDevice(request, claim, key, deps, now);
      // The two reads are concurrent: the last use may have gone to this device's own duplicate
      // between them. Explained (and replayed, if so) like a refused transaction.
      if (claim.usesLeft <= 0) throw new ReservationRejectedError({ claim: true });
      await deps.inventory.reserve(claim, device, now);
      logger.info('device reserved', {
        thingName: device.thingName,
        batchId: device.batchId,
        claimId: device.claimId,
      });
    }
  } catch (error) {
    if (!(error instanceof ReservationRejectedError)) throw error;
    // A duplicate can lose the race to its own twin, which may have finished meanwhile: a replay.
    const finished = await explainRejection(error, request, tokenHash, csr, key, use, deps);
    await reattach(finished, deps, logger);
    logger.info('registration replayed after a race', { certificateId: finished.certificateId });
    return { status: 200, body: responseFor(finished, finished, endpoints, deps.settings) };
  }

  const certificate = await provision(device, key, existing, deps, clock, logger);
  logger.info('device registered', { thingName: device.thingName, certificateId: certificate.certificateId });
  const body = responseFor(device, certificate, endpoints, deps.settings);
  return {
    status: 201,
    body: key.privateKeyPem === undefined ? body : { ...body, privateKey: key.privateKeyPem },
  };
}

async function keygenAttempt(): Promise<AttemptKey> {
  const { csrPem, publicKeySha256, privateKeyPem } = await generateServerKey();
  return { csrPem, csrSha256: SERVER_KEYGEN, publicKeySha256, privateKeyPem };
}

/**
 * The same claim and a CSR for the same key after a lost response (or a 429/503 after the commit):
 * answer again, never issue a second certificate. The CSR's signature proves possession of the key,
 * and firmware may sign a new CSR for each request (ECDSA signatures differ every time).
 */
function isReplay(existing: DeviceRecord, tokenHash: string, csr: ParsedCsr | undefined): boolean {
  return (
    existing.status === 'ACTIVE' &&
    csr !== undefined &&
    existing.tokenHash === tokenHash &&
    existing.publicKeySha256 === csr.publicKeySha256
  );
}

/**
 * The identity rules: whether this request may act on the existing registration of its serial
 * number; throws the reason it may not. A claim token alone never suffices, since a batch may share
 * it (maxUses > 1) and a single-use one may leak:
 * - a FAILED or interrupted attempt is resumed only with the same public key as that attempt (with
 *   server-side key generation there is no key to show, so only with a single-use claim);
 * - a finished server-keygen registration whose response was lost is re-issued (new key, old
 *   certificate retired) only with a single-use claim and within KEYGEN_REISSUE_WINDOW_MS;
 * - anything else (a finished CSR registration, a decommissioned device, another claim) is refused.
 */
function assertTakeable(
  existing: DeviceRecord,
  tokenHash: string,
  key: AttemptKey,
  claim: Claim,
  now: Date,
): void {
  const refuse = (why: string) =>
    new SerialAlreadyRegisteredError(`this serial number is already registered${why}`);
  if (existing.tokenHash !== tokenHash || existing.status === 'DECOMMISSIONED') throw refuse('');
  // A live lease: an attempt, the reconciler or an operator's decommission is working on the record.
  if (existing.leaseUntil > now.getTime()) {
    throw new RegistrationInProgressError('this device is being worked on; retry shortly', {
      retryAfterSeconds: 2,
    });
  }
  const keygen = key.csrSha256 === SERVER_KEYGEN;
  const wasKeygen = existing.csrSha256 === SERVER_KEYGEN;
  const singleUse = claim.maxUses === 1;
  if (existing.status === 'ACTIVE') {
    // From the first completion: re-issues do not move the window.
    const completedAt = Date.parse(existing.firstActivatedAt ?? existing.activatedAt ?? existing.updatedAt);
    // A device that has started a rotation (or finished one) demonstrably got its key: its response
    // was not lost, and a re-issue would give its identity to whoever else holds the token.
    const rotated = existing.rotation !== undefined || existing.rotatedAt !== undefined;
    const reissue =
      wasKeygen && keygen && singleUse && !rotated && now.getTime() - completedAt <= KEYGEN_REISSUE_WINDOW_MS;
    if (!reissue) throw refuse('');
    return;
  }
  // AWS IoT refused the attempt's CSR before any certificate existed: that key can never be used, so
  // the device may come back with another (the record holds no identity yet).
  const csrRefused =
    existing.status === 'FAILED' &&
    existing.failure?.error === 'CSR_REJECTED' &&
    !existing.progress.certificate;
  const sameHolder = wasKeygen
    ? keygen && singleUse
    : !keygen && (csrRefused || existing.publicKeySha256 === key.publicKeySha256);
  if (!sameHolder) {
    throw refuse(
      wasKeygen
        ? ': a failed server-keygen registration on a shared claim cannot be resumed by its token alone'
        : ': resume it with the key of its first attempt',
    );
  }
}

/**
 * A device an operator reset (after a repair) may register once more, with a claim bound to its
 * serial number: a batch token shared by a line must not let anyone who holds it take the identity
 * over. Its record, thing and thing name stay; the new claim is spent as any registration's.
 */
function assertReRegistrable(existing: DeviceRecord, claim: Claim, now: Date): void {
  // Minted for this purpose, after the reset: an older bound claim with uses left (the one in the lost
  // unit's flash) must not bring the identity back.
  const mintedAfterReset = Date.parse(claim.createdAt) >= Date.parse(existing.resetAt ?? '');
  if (claim.serialNumber !== existing.serialNumber || !mintedAfterReset) {
    throw new SerialAlreadyRegisteredError(
      'this device was reset: register it again with a claim bound to its serial number, minted after the reset',
    );
  }
  if (existing.leaseUntil > now.getTime()) {
    throw new RegistrationInProgressError('this device is being worked on; retry shortly', {
      retryAfterSeconds: 2,
    });
  }
}

/** The record of a reset device as its new registration starts it: a new claim, key and attempt. */
function reRegistration(
  existing: DeviceRecord,
  request: RegisterRequest,
  claim: Claim,
  key: AttemptKey,
  deps: RegistrationDeps,
  now: Date,
): DeviceRecord {
  const next = nextAttempt(existing, request, key, deps, now);
  return {
    ...next,
    claimId: claim.claimId,
    tokenHash: claim.tokenHash,
    formerClaims: [...(existing.formerClaims ?? []), existing.tokenHash],
    progress: NOTHING_DONE,
    attributes: { ...next.attributes, ...claim.attributes },
  };
}

function draftDevice(
  request: RegisterRequest,
  claim: Claim,
  key: AttemptKey,
  deps: RegistrationDeps,
  now: Date,
): DeviceRecord {
  const thingName = `${claim.thingNamePrefix ?? deps.settings.defaultThingNamePrefix}${request.serialNumber}`;
  if (thingName.length > MAX_THING_NAME_LENGTH) {
    throw new ThingNameTooLongError(
      `the thing name would be ${thingName.length} characters; AWS IoT allows ${MAX_THING_NAME_LENGTH}`,
    );
  }
  const newId = deps.newId ?? randomUUID;
  return {
    serialNumber: request.serialNumber,
    thingName,
    status: 'PROVISIONING',
    batchId: claim.batchId,
    claimId: claim.claimId,
    tokenHash: claim.tokenHash,
    provisioningId: newId(),
    leaseId: newId(),
    leaseUntil: now.getTime() + LEASE_MS,
    csrSha256: key.csrSha256,
    publicKeySha256: key.publicKeySha256,
    progress: NOTHING_DONE,
    // The claim's stamped attributes win over what the device reports about itself.
    attributes: { ...request.attributes, ...claim.attributes },
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

/** The record as a new attempt continues it: same thing and provisioningId, a new lease. */
function nextAttempt(
  existing: DeviceRecord,
  request: RegisterRequest,
  key: AttemptKey,
  deps: RegistrationDeps,
  now: Date,
): DeviceRecord {
  const { failure: _previousFailure, ...rest } = existing;
  return {
    ...rest,
    status: 'PROVISIONING',
    leaseId: (deps.newId ?? randomUUID)(),
    leaseUntil: now.getTime() + LEASE_MS,
    csrSha256: key.csrSha256,
    publicKeySha256: key.publicKeySha256,
    attributes: { ...request.attributes, ...existing.attributes },
    updatedAt: now.toISOString(),
  };
}

/**
 * Re-reads after a failed transaction. Returns the device if what changed is this very registration,
 * finished by a concurrent duplicate (a replay); otherwise throws the error that describes it.
 */
async function explainRejection(
  rejection: ReservationRejectedError,
  request: RegisterRequest,
  tokenHash: string,
  csr: ParsedCsr | undefined,
  key: AttemptKey,
  use: ClaimUse,
  deps: RegistrationDeps,
): Promise<DeviceRecord> {
  const [claim, device] = await Promise.all([
    deps.inventory.getClaim(tokenHash),
    deps.inventory.getDevice(request.serialNumber),
  ]);
  if (!claim) throw new ClaimTokenUnknownError('no claim matches this token');
  if (device && isReplay(device, tokenHash, csr)) return device;
  const { rejected } = rejection;
  if (rejected.batch) throw new ClaimRevokedError('the batch of this claim token was revoked');
  if (rejected.claim) assertClaimUsable(claim, use, { spendsAUse: device?.tokenHash !== tokenHash });
  if (device?.status === 'RESET') assertReRegistrable(device, claim, use.now);
  else if (device) assertTakeable(device, tokenHash, key, claim, use.now);
  if (rejected.thingName) {
    throw new ThingNameTakenError('this thing name belongs to another serial number', {
      cause: rejection,
    });
  }
  if (rejected.publicKey) {
    throw new PublicKeyInUseError('this public key is already registered to another device', {
      cause: rejection,
    });
  }
  throw new RegistrationConflictError('a concurrent request changed this claim or device; retry', {
    retryAfterSeconds: 1,
    cause: rejection,
  });
}

async function provision(
  device: DeviceRecord,
  key: AttemptKey,
  previous: DeviceRecord | undefined,
  deps: RegistrationDeps,
  clock: () => Date,
  logger: Logger,
): Promise<IssuedCertificate> {
  const { iot, inventory, settings } = deps;
  const progress: Progress = { ...NOTHING_DONE, ...previous?.progress };
  let step: Failure['step'] = 'create';
  // What the record holds from an earlier attempt, while it exists.
  let certificate = previous?.progress.certificate ? recordedCertificate(previous) : undefined;
  const checkTime = () => {
    if ((deps.remainingMs?.() ?? Number.POSITIVE_INFINITY) < MIN_STEP_MS) {
      throw new ServiceUnavailableError('not enough time left to finish; retry', { retryAfterSeconds: 2 });
    }
  };
  const forget = () => {
    certificate = undefined;
    Object.assign(progress, NO_CERTIFICATE);
  };
  // An earlier attempt's certificate is kept for the same CSR (never for a new server key) while it
  // still exists and is not revoked: one deleted by a rollback whose answer was lost is not reused.
  const issue = async (): Promise<IssuedCertificate> => {
    const found = certificate && (await iot.describeCertificate(certificate.certificateId));
    // A REVOKED one can never be activated: a new certificate, and the sweep retires the old one.
    if (certificate && found && found.status !== 'REVOKED') {
      progress.certificateActive = true;
      if (found.status !== 'ACTIVE') await iot.activateCertificate(certificate.certificateId);
      return certificate;
    }
    forget();
    // Marked before the call: a creation (ACTIVE) whose answer was lost may have landed.
    progress.certificateActive = true;
    return iot.createCertificateFromCsr(key.csrPem);
  };
  const patiently = async <T>(create: () => Promise<T>): Promise<T> => {
    for (let retry = 1; ; retry++) {
      try {
        return await create();
      } catch (error) {
        const timeLeft = deps.remainingMs?.() ?? Number.POSITIVE_INFINITY;
        if (!(error instanceof ThrottledError) || retry > THROTTLED_CALL_RETRIES) throw error;
        if (timeLeft < 2 * MIN_STEP_MS + 1_500) throw error;
        await delay(500 + Math.random() * 1_000);
      }
    }
  };
  let attachments: [PromiseSettledResult<void>, PromiseSettledResult<void>];
  // The record as this attempt holds it: a fence before a rollback gives it a lease of its own.
  let owner = device;
  try {
    if (certificate && (previous?.csrSha256 !== device.csrSha256 || device.csrSha256 === SERVER_KEYGEN)) {
      await retire(certificate, device, previous?.progress ?? progress, deps, logger);
      forget();
    }
    checkTime();
    const [issued, thing] = await Promise.allSettled([
      patiently(issue),
      // A paused attempt's thing is there already. provisioningId on the thing tells our thing from a
      // stranger's: CreateThing with other attributes fails, so a success means this record owns it.
      progress.thing
        ? Promise.resolve()
        : patiently(() =>
            iot.createThing(device.thingName, {
              batchId: device.batchId,
              provisioningId: device.provisioningId,
            }),
          ),
    ]);
    if (issued.status === 'fulfilled') {
      certificate = issued.value;
      progress.certificate = true;
    }
    if (thing.status === 'fulfilled') progress.thing = true;
    const created = firstFailure(issued, thing);
    if (created !== undefined) throw created;
    if (!certificate) throw new Error('certificate creation settled without a certificate');

    step = 'attach';
    checkTime();
    const { certificateArn, certificateId } = certificate;
    const [committed, policy, principal] = await Promise.allSettled([
      inventory.complete(
        device,
        certificate,
        { ...progress, policyAttached: true, thingAttached: true },
        clock(),
      ),
      patiently(() => iot.attachPolicy(settings.policyName, certificateArn)),
      patiently(() => iot.attachThingPrincipal(device.thingName, certificateArn)),
    ]);
    progress.policyAttached = policy.status === 'fulfilled';
    progress.thingAttached = principal.status === 'fulfilled';
    if (committed.status === 'rejected') {
      // A commit whose answer was lost may have landed, or land late: it stands then, and nothing may
      // be rolled back under a record that says ACTIVE. Rolled back only once fenced off.
      const verdict = await settleCommit(device, certificateId, deps);
      if (verdict === 'unknown') {
        throw new CommitUnconfirmedError('the registration could not be confirmed; retry', {
          retryAfterSeconds: 2,
          cause: committed.reason,
        });
      }
      if (verdict !== 'committed') {
        owner = verdict;
        throw firstFailure(committed, policy, principal);
      }
    }
    attachments = [policy, principal];
  } catch (error) {
    // Neither rolled back nor kept: the lease lapses, then the retry finds it ACTIVE or resumes it.
    if (error instanceof CommitUnconfirmedError) throw error;
    if (error instanceof ThrottledError && step === 'create' && key.csrSha256 !== SERVER_KEYGEN) {
      await pause(owner, { certificate, progress }, deps, clock, logger);
    } else {
      await recordFailure(owner, step, error, { certificate, progress }, deps, clock, logger);
    }
    throw error;
  }
  await settleAttachments({ ...device, ...certificate }, attachments, deps, clock, logger);
  return certificate;
}

/**
 * After the commit: an attachment that failed is noted on the record, and the device told to come
 * back (429 while AWS IoT throttles, else 503, with Retry-After); its retry is a replay, which
 * re-attaches. With a server-generated key the device never got it: its retry is a re-issue.
 */
async function settleAttachments(
  device: DeviceRecord,
  attachments: PromiseSettledResult<void>[],
  deps: RegistrationDeps,
  clock: () => Date,
  logger: Logger,
): Promise<void> {
  const failed = firstFailure(...attachments);
  if (failed === undefined) return;
  const error = errorCode(failed);
  logger.error('registration committed; an attachment failed, the retry re-attaches', {
    thingName: device.thingName,
    certificateId: device.certificateId,
    error: failed instanceof Error ? describeError(failed) : error,
  });
  metric(logger, 'AttachmentsPending', { error });
  await deps.inventory
    .noteAttachments(device, { error, at: clock().toISOString() })
    .catch((noteError: unknown) =>
      logger.error('could not note the pending attachments', { error: noteError }),
    );
  if (failed instanceof ThrottledError) throw failed;
  throw new ServiceUnavailableError('the device is registered but not yet usable; retry', {
    retryAfterSeconds: failed instanceof AppError ? (failed.retryAfterSeconds ?? 2) : 2,
    cause: failed,
  });
}

/**
 * A replay re-attaches the certificate (idempotent in AWS IoT): the commit is sent beside the
 * attachments, so a registration may be ACTIVE with an attachment missing (its attempt died, or an
 * attachment failed) until its device asks again.
 */
async function reattach(device: DeviceRecord, deps: RegistrationDeps, logger: Logger): Promise<void> {
  const certificate = recordedCertificate(device);
  if (!certificate) throw new Error('device record has no certificate');
  await Promise.all([
    deps.iot.attachPolicy(deps.settings.policyName, certificate.certificateArn),
    deps.iot.attachThingPrincipal(device.thingName, certificate.certificateArn),
  ]);
  if (device.attachmentsPending) {
    await deps.inventory
      .noteAttachments(device, undefined)
      .catch((error: unknown) => logger.error('could not clear the pending attachments note', { error }));
  }
}

/**
 * AWS IoT throttled the attempt before its commit: what it made stays (recorded, lease released, still
 * PROVISIONING) for the device's retry, which resumes it; the reconciler rolls it back if none comes.
 */
async function pause(
  device: DeviceRecord,
  created: { certificate: IssuedCertificate | undefined; progress: Progress },
  deps: RegistrationDeps,
  clock: () => Date,
  logger: Logger,
): Promise<void> {
  try {
    await deps.inventory.pause(device, created.certificate, created.progress, clock());
    logger.warn('registration paused: AWS IoT is throttling', { thingName: device.thingName });
    metric(logger, 'RegistrationPaused');
  } catch (error) {
    // The lease lapses: the retry takes over, or the reconciler rolls back; the sweep finds the certificate.
    logger.error('could not record the paused registration', { error });
  }
}

/** A commit whose outcome could not be established: not rolled back, not kept. */
class CommitUnconfirmedError extends ServiceUnavailableError {}

/**
 * After a commit that failed: fences the record off under a new lease (so that the commit, if it is
 * still in flight, can no longer land) and returns it for the rollback; or says the commit landed; or,
 * when DynamoDB answers neither, that it is unknown.
 */
async function settleCommit(
  device: DeviceRecord,
  certificateId: string,
  deps: RegistrationDeps,
): Promise<DeviceRecord | 'committed' | 'unknown'> {
  const fenced = { ...device, leaseId: (deps.newId ?? randomUUID)() };
  try {
    if (await deps.inventory.fence(device, fenced.leaseId)) return fenced;
    const now = await deps.inventory.getDevice(device.serialNumber);
    // The fence itself landed with its answer lost (the SDK's retry then found the lease moved).
    if (now?.status === 'PROVISIONING' && now.leaseId === fenced.leaseId) return fenced;
    const landed =
      now?.status === 'ACTIVE' && now.leaseId === device.leaseId && now.certificateId === certificateId;
    return landed ? 'committed' : 'unknown';
  } catch {
    return 'unknown';
  }
}

const NO_CERTIFICATE: Partial<Progress> = {
  certificate: false,
  policyAttached: false,
  thingAttached: false,
  certificateActive: false,
};

/**
 * A certificate from an earlier attempt that this one will not use (another CSR of the same key, a
 * lost server key) is retired first, so that a device never holds two. The thing stays.
 */
async function retire(
  certificate: IssuedCertificate,
  device: DeviceRecord,
  progress: Progress,
  deps: RegistrationDeps,
  logger: Logger,
): Promise<void> {
  const outcome = await rollBack(
    deps.iot,
    { policyName: deps.settings.policyName, thingName: device.thingName, certificate },
    // Deactivated whatever the record says: an attempt that died after its activation landed never
    // recorded it.
    { ...progress, thing: false, certificateActive: true },
    logger,
    rollbackBudget(deps),
  );
  if (outcome.rollback === 'INCOMPLETE') {
    throw new ServiceUnavailableError('the previous certificate could not be retired yet; retry', {
      retryAfterSeconds: 5,
    });
  }
  logger.info('previous certificate retired', { certificateId: certificate.certificateId });
}

/** Rollback may wait for AWS IoT's detachments to propagate while the function has time left. */
function rollbackBudget(deps: RegistrationDeps): { deadline: number } {
  const left = (deps.remainingMs?.() ?? Number.POSITIVE_INFINITY) - 3_000;
  return { deadline: Date.now() + Math.max(0, Math.min(DEFAULT_ROLLBACK_BUDGET_MS, left)) };
}

async function recordFailure(
  device: DeviceRecord,
  step: Failure['step'],
  error: unknown,
  created: { certificate: IssuedCertificate | undefined; progress: Progress },
  deps: RegistrationDeps,
  clock: () => Date,
  logger: Logger,
): Promise<void> {
  const reason = errorCode(error);
  logger.error('registration failed; rolling back', {
    step,
    thingName: device.thingName,
    error: error instanceof Error ? describeError(error) : reason,
  });
  const { certificate } = created;
  // A CreateThing whose answer was lost may have landed: the thing is ours if it carries our
  // provisioningId (never a stranger's thing of the same name).
  const thing =
    created.progress.thing ||
    (step === 'create' &&
      (await deps.iot.thingProvisioningId(device.thingName).catch(() => undefined)) ===
        device.provisioningId);
  const outcome = await rollBack(
    deps.iot,
    {
      policyName: deps.settings.policyName,
      thingName: device.thingName,
      ...(certificate ? { certificate } : {}),
    },
    // A reset device's thing holds its identity and data: never deleted by a rollback.
    { ...created.progress, thing: thing && !device.keepThing },
    logger,
    rollbackBudget(deps),
  );
  const failure: Failure = {
    step,
    error: reason,
    at: clock().toISOString(),
    rollback: outcome.rollback,
    leftovers: outcome.leftovers,
    ...(certificate ? { certificateId: certificate.certificateId } : {}),
  };
  try {
    await deps.inventory.markFailed(device, outcome.progress, failure, clock(), certificate);
  } catch (recordError) {
    // The record stays PROVISIONING under this lease: once it lapses, a retry or the reconciler takes over.
    logger.error('could not record the failed registration', {
      failure,
      error: recordError,
    });
  }
  metric(logger, outcome.rollback === 'COMPLETED' ? 'RegistrationRolledBack' : 'RollbackIncomplete', {
    step,
    leftovers: outcome.leftovers,
  });
}

/** The error's stable code or name, never its message (AWS messages can echo input). */
function errorCode(error: unknown): string {
  return error instanceof AppError ? error.code : error instanceof Error ? error.name : 'Unknown';
}

function firstFailure(...results: PromiseSettledResult<unknown>[]): unknown {
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  return failed?.reason;
}

function responseFor(
  device: Pick<DeviceRecord, 'thingName' | 'serialNumber'>,
  certificate: Partial<IssuedCertificate>,
  endpoints: Endpoints,
  settings: RegistrationSettings,
): RegistrationResponse {
  const { certificateId, certificateArn, certificatePem } = certificate;
  if (!certificateId || !certificateArn || !certificatePem)
    throw new Error('device record has no certificate');
  return {
    thingName: device.thingName,
    serialNumber: device.serialNumber,
    certificateId,
    certificateArn,
    certificatePem,
    credentialsProvider: {
      endpoint: endpoints.credentialsProvider,
      roleAlias: settings.roleAlias,
      url: `https://${endpoints.credentialsProvider}/role-aliases/${settings.roleAlias}/credentials`,
    },
    iotDataEndpoint: endpoints.data,
    rootCaPem: settings.rootCaPem,
  };
}
