import { randomUUID } from 'node:crypto';
import { assertClaimUsable, type ClaimUse } from '../claims/claim-rules.js';
import { hashClaimToken } from '../claims/token.js';
import { type ParsedCsr, parseCsr } from '../csr/parse-csr.js';
import {
  AppError,
  ClaimTokenUnknownError,
  RegistrationConflictError,
  RegistrationInProgressError,
  SerialAlreadyRegisteredError,
  ServiceUnavailableError,
  ThingNameTooLongError,
} from '../errors.js';
import { type Inventory, type IssuedCertificate, ReservationRejectedError } from '../inventory/inventory.js';
import {
  type Claim,
  type DeviceRecord,
  type Failure,
  NOTHING_DONE,
  type Progress,
  SERVER_KEYGEN,
} from '../inventory/model.js';
import type { Endpoints } from '../iot/endpoints.js';
import type { IotGateway } from '../iot/iot-gateway.js';
import { createLogger, describeError, type Logger } from '../logger.js';
import { metric } from '../metrics.js';
import { MAX_THING_NAME_LENGTH, type RegisterRequest } from './request.js';
import { rollBack } from './rollback.js';

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
 * What happens on POST /register:
 * 1. check the CSR (structure, proof of possession, key type) before anything is read or written;
 * 2. read the claim, the device and the endpoints in parallel; a finished registration with the same
 *    claim and CSR is replayed (200, same certificate);
 * 3. spend the claim and reserve the device in one conditional transaction (race-proof), or, for a
 *    retry by the same claim, take the record over without spending a use: a FAILED attempt, one
 *    whose lease lapsed (it died), or an ACTIVE server-keygen device that lost its key;
 * 4. create the certificate (INACTIVE) and the thing in parallel; a resumed attempt reuses its
 *    certificate if the CSR is the same, and retires it first if not;
 * 5. record the certificate, attach the policy and the thing, in parallel;
 * 6. activate the certificate, then mark the device ACTIVE.
 * A failure after step 3 rolls back what AWS IoT holds and records the outcome on the device.
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

  const [claim, existing, endpoints] = await Promise.all([
    deps.inventory.getClaim(tokenHash),
    deps.inventory.getDevice(request.serialNumber),
    deps.endpoints(),
  ]);
  if (!claim) throw new ClaimTokenUnknownError('no claim matches this token');
  const use: ClaimUse = { serialNumber: request.serialNumber, serverKeygen: csr === undefined, now };
  const csrSha256 = csr?.sha256 ?? SERVER_KEYGEN;

  if (existing && isReplay(existing, tokenHash, csr)) {
    logger.info('registration replayed', { certificateId: existing.certificateId });
    return { status: 200, body: responseFor(existing, existing, endpoints, deps.settings) };
  }

  let device: DeviceRecord;
  try {
    if (existing) {
      assertTakeable(existing, tokenHash, csrSha256, now);
      assertClaimUsable(claim, use, { spendsAUse: false });
      device = nextAttempt(existing, request, csrSha256, deps, now);
      await deps.inventory.takeOver(existing, device, now);
      logger.info('registration taken over', { from: existing.status, progress: existing.progress });
    } else {
      assertClaimUsable(claim, use, { spendsAUse: false });
      device = draftDevice(request, claim, csrSha256, deps, now);
      // The two reads are concurrent: the last use may have gone to this device's own duplicate
      // between them. Explained (and replayed, if so) like a refused transaction.
      if (claim.usesLeft <= 0) throw new ReservationRejectedError(true, false);
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
    const finished = await explainRejection(error, request, tokenHash, csr, use, deps);
    logger.info('registration replayed after a race', { certificateId: finished.certificateId });
    return { status: 200, body: responseFor(finished, finished, endpoints, deps.settings) };
  }

  const { certificate, privateKey } = await provision(device, csr, existing, deps, clock, logger);
  logger.info('device registered', { thingName: device.thingName, certificateId: certificate.certificateId });
  const body = responseFor(device, certificate, endpoints, deps.settings);
  return { status: 201, body: privateKey === undefined ? body : { ...body, privateKey } };
}

/** The same claim and CSR after a lost response: answer again, never issue a second certificate. */
function isReplay(existing: DeviceRecord, tokenHash: string, csr: ParsedCsr | undefined): boolean {
  return (
    existing.status === 'ACTIVE' &&
    csr !== undefined &&
    existing.tokenHash === tokenHash &&
    existing.csrSha256 === csr.sha256
  );
}

/** Whether this request may take the existing record over; throws the reason it may not. */
function assertTakeable(existing: DeviceRecord, tokenHash: string, csrSha256: string, now: Date): void {
  const keygenReissue =
    existing.status === 'ACTIVE' && existing.csrSha256 === SERVER_KEYGEN && csrSha256 === SERVER_KEYGEN;
  if (
    existing.tokenHash !== tokenHash ||
    existing.status === 'DECOMMISSIONED' ||
    (existing.status === 'ACTIVE' && !keygenReissue)
  ) {
    throw new SerialAlreadyRegisteredError('this serial number is already registered');
  }
  if (existing.status === 'PROVISIONING' && existing.leaseUntil > now.getTime()) {
    throw new RegistrationInProgressError('this device is being registered; retry shortly', {
      retryAfterSeconds: 2,
    });
  }
}

function draftDevice(
  request: RegisterRequest,
  claim: Claim,
  csrSha256: string,
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
    csrSha256,
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
  csrSha256: string,
  deps: RegistrationDeps,
  now: Date,
): DeviceRecord {
  const { failure: _previousFailure, ...rest } = existing;
  return {
    ...rest,
    status: 'PROVISIONING',
    leaseId: (deps.newId ?? randomUUID)(),
    leaseUntil: now.getTime() + LEASE_MS,
    csrSha256,
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
  use: ClaimUse,
  deps: RegistrationDeps,
): Promise<DeviceRecord> {
  const [claim, device] = await Promise.all([
    deps.inventory.getClaim(tokenHash),
    deps.inventory.getDevice(request.serialNumber),
  ]);
  if (!claim) throw new ClaimTokenUnknownError('no claim matches this token');
  if (device && isReplay(device, tokenHash, csr)) return device;
  if (rejection.claimRejected) assertClaimUsable(claim, use, { spendsAUse: device?.tokenHash !== tokenHash });
  if (device) assertTakeable(device, tokenHash, csr?.sha256 ?? SERVER_KEYGEN, use.now);
  throw new RegistrationConflictError('a concurrent request changed this claim or device; retry', {
    retryAfterSeconds: 1,
    cause: rejection,
  });
}

interface Provisioned {
  certificate: IssuedCertificate;
  privateKey?: string;
}

async function provision(
  device: DeviceRecord,
  csr: ParsedCsr | undefined,
  previous: DeviceRecord | undefined,
  deps: RegistrationDeps,
  clock: () => Date,
  logger: Logger,
): Promise<Provisioned> {
  const { iot, inventory, settings } = deps;
  const progress: Progress = { ...NOTHING_DONE, ...previous?.progress };
  let step: Failure['step'] = 'create';
  let certificate = reusableCertificate(previous, device);
  let privateKey: string | undefined;
  const checkTime = () => {
    if ((deps.remainingMs?.() ?? Number.POSITIVE_INFINITY) < MIN_STEP_MS) {
      throw new ServiceUnavailableError('not enough time left to finish; retry', { retryAfterSeconds: 2 });
    }
  };
  try {
    await retireUnusableCertificate(previous, certificate, deps, logger, progress);
    checkTime();
    const issuing: Promise<IssuedCertificate & { privateKey?: string }> = certificate
      ? Promise.resolve(certificate)
      : csr
        ? iot.createCertificateFromCsr(csr.pem)
        : iot.createKeysAndCertificate();
    const [issued, thing] = await Promise.allSettled([
      issuing,
      // provisioningId on the thing tells our thing from a stranger's: CreateThing with other
      // attributes fails, so a success means this device record owns the thing.
      iot.createThing(device.thingName, { batchId: device.batchId, provisioningId: device.provisioningId }),
    ]);
    if (issued.status === 'fulfilled') {
      certificate = stripKey(issued.value);
      privateKey = issued.value.privateKey;
      progress.certificate = true;
    }
    if (thing.status === 'fulfilled') progress.thing = true;
    const created = firstFailure(issued, thing);
    if (created !== undefined) throw created;
    if (!certificate) throw new Error('certificate creation settled without a certificate');

    step = 'attach';
    checkTime();
    const certificateArn = certificate.certificateArn;
    const [recorded, policy, principal] = await Promise.allSettled([
      inventory.recordCertificate(device, certificate, progress, clock()),
      iot.attachPolicy(settings.policyName, certificateArn),
      iot.attachThingPrincipal(device.thingName, certificateArn),
    ]);
    progress.policyAttached = policy.status === 'fulfilled';
    progress.thingAttached = principal.status === 'fulfilled';
    const attached = firstFailure(recorded, policy, principal);
    if (attached !== undefined) throw attached;

    step = 'activate';
    checkTime();
    await iot.activateCertificate(certificate.certificateId);
    progress.certificateActive = true;
    await inventory.markActive(device, progress, clock());
    return privateKey === undefined ? { certificate } : { certificate, privateKey };
  } catch (error) {
    await recordFailure(device, step, error, { certificate, progress }, deps, clock, logger);
    throw error;
  }
}

/** A resumed attempt with the same CSR keeps the certificate it already has. */
function reusableCertificate(
  previous: DeviceRecord | undefined,
  device: DeviceRecord,
): IssuedCertificate | undefined {
  if (
    !previous?.progress.certificate ||
    previous.csrSha256 !== device.csrSha256 ||
    device.csrSha256 === SERVER_KEYGEN
  ) {
    return undefined;
  }
  const { certificateId, certificateArn, certificatePem } = previous;
  return certificateId && certificateArn && certificatePem
    ? { certificateId, certificateArn, certificatePem }
    : undefined;
}

/**
 * A certificate from an earlier attempt that this one will not use (another CSR, a lost server
 * key, a failed attempt's leftover) is retired first, so that a device never holds two.
 */
async function retireUnusableCertificate(
  previous: DeviceRecord | undefined,
  kept: IssuedCertificate | undefined,
  deps: RegistrationDeps,
  logger: Logger,
  progress: Progress,
): Promise<void> {
  const { certificateId, certificateArn, certificatePem } = previous ?? {};
  if (!previous?.progress.certificate || kept || !certificateId || !certificateArn || !certificatePem) return;
  const outcome = await rollBack(
    deps.iot,
    {
      policyName: deps.settings.policyName,
      thingName: previous.thingName,
      certificate: { certificateId, certificateArn, certificatePem },
    },
    // Only the certificate goes: the thing stays for this attempt.
    { ...previous.progress, thing: false },
    logger,
  );
  if (outcome.rollback === 'INCOMPLETE') {
    throw new ServiceUnavailableError('the previous certificate could not be retired yet; retry', {
      retryAfterSeconds: 5,
    });
  }
  Object.assign(progress, {
    certificate: false,
    policyAttached: false,
    thingAttached: false,
    certificateActive: false,
  });
  logger.info('previous certificate retired', { certificateId });
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
  const reason = error instanceof AppError ? error.code : error instanceof Error ? error.name : 'Unknown';
  logger.error('registration failed; rolling back', {
    step,
    thingName: device.thingName,
    error: error instanceof Error ? describeError(error) : reason,
  });
  const outcome = await rollBack(
    deps.iot,
    {
      policyName: deps.settings.policyName,
      thingName: device.thingName,
      ...(created.certificate ? { certificate: created.certificate } : {}),
    },
    created.progress,
    logger,
  );
  const failure: Failure = {
    step,
    error: reason,
    at: clock().toISOString(),
    rollback: outcome.rollback,
    leftovers: outcome.leftovers,
  };
  try {
    await deps.inventory.markFailed(device, outcome.progress, failure, clock());
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

function firstFailure(...results: PromiseSettledResult<unknown>[]): unknown {
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  return failed?.reason;
}

function stripKey(certificate: IssuedCertificate): IssuedCertificate {
  const { certificateId, certificateArn, certificatePem } = certificate;
  return { certificateId, certificateArn, certificatePem };
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
