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
  ThingNameTooLongError,
} from '../errors.js';
import { type Inventory, type IssuedCertificate, ReservationRejectedError } from '../inventory/inventory.js';
import {
  type Claim,
  type DeviceRecord,
  type Failure,
  type Progress,
  SERVER_KEYGEN,
} from '../inventory/model.js';
import type { Endpoints } from '../iot/endpoints.js';
import type { IotGateway } from '../iot/iot-gateway.js';
import { createLogger, describeError, type Logger } from '../logger.js';
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
  /** 201 for a new registration, 200 for a replay of a finished one. */
  status: 200 | 201;
  body: RegistrationResponse;
}

/**
 * What happens on POST /register:
 * 1. check the CSR (structure, proof of possession, key type), before anything is read or written;
 * 2. read the claim, the device and the endpoints in parallel; a finished registration with the same
 *    claim and CSR is replayed (200, same certificate);
 * 3. spend the claim and reserve the device in one conditional transaction (race-proof);
 * 4. create the certificate and the thing in parallel;
 * 5. attach the policy and the thing, and record the certificate id, in parallel;
 * 6. mark the device ACTIVE.
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

  const device = draftDevice(request, claim, csrSha256, deps, now);
  try {
    if (existing) {
      assertRetakeable(existing, tokenHash);
      assertClaimUsable(claim, use, { spendsAUse: false });
      await deps.inventory.retake(existing, device, now);
    } else {
      assertClaimUsable(claim, use, { spendsAUse: true });
      await deps.inventory.reserve(claim, device, now);
    }
  } catch (error) {
    if (error instanceof ReservationRejectedError)
      await explainRejection(error, request, tokenHash, use, deps);
    throw error;
  }
  logger.info('device reserved', {
    thingName: device.thingName,
    batchId: device.batchId,
    claimId: device.claimId,
  });

  const { certificate, privateKey } = await provision(device, csr, deps, clock, logger);
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

/** Only a FAILED registration by the same claim may start again; anything else is someone else's device. */
function assertRetakeable(existing: DeviceRecord, tokenHash: string): void {
  if (
    existing.tokenHash !== tokenHash ||
    existing.status === 'ACTIVE' ||
    existing.status === 'DECOMMISSIONED'
  ) {
    throw new SerialAlreadyRegisteredError('this serial number is already registered');
  }
  if (existing.status === 'PROVISIONING') {
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
  return {
    serialNumber: request.serialNumber,
    thingName,
    status: 'PROVISIONING',
    batchId: claim.batchId,
    claimId: claim.claimId,
    tokenHash: claim.tokenHash,
    provisioningId: (deps.newId ?? randomUUID)(),
    csrSha256,
    progress: { certificate: false, thing: false, policyAttached: false, thingAttached: false },
    // The claim's stamped attributes win over what the device reports about itself.
    attributes: { ...request.attributes, ...claim.attributes },
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

/** Re-reads after a failed transaction and throws the error that describes what changed. */
async function explainRejection(
  rejection: ReservationRejectedError,
  request: RegisterRequest,
  tokenHash: string,
  use: ClaimUse,
  deps: RegistrationDeps,
): Promise<never> {
  const [claim, device] = await Promise.all([
    deps.inventory.getClaim(tokenHash),
    deps.inventory.getDevice(request.serialNumber),
  ]);
  if (!claim) throw new ClaimTokenUnknownError('no claim matches this token');
  if (rejection.claimRejected) assertClaimUsable(claim, use, { spendsAUse: device?.tokenHash !== tokenHash });
  if (device && (rejection.deviceRejected || device.tokenHash !== tokenHash))
    assertRetakeable(device, tokenHash);
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
  deps: RegistrationDeps,
  clock: () => Date,
  logger: Logger,
): Promise<Provisioned> {
  const { iot, inventory, settings } = deps;
  const progress: Progress = { ...device.progress };
  let step: Failure['step'] = 'create';
  let certificate: IssuedCertificate | undefined;
  let privateKey: string | undefined;
  try {
    const issuing: Promise<IssuedCertificate & { privateKey?: string }> = csr
      ? iot.createCertificateFromCsr(csr.pem)
      : iot.createKeysAndCertificate();
    const [issued, thing] = await Promise.allSettled([
      issuing,
      // provisioningId on the thing tells our thing from a stranger's: CreateThing with other
      // attributes fails, so a success means this registration owns the thing.
      iot.createThing(device.thingName, { batchId: device.batchId, provisioningId: device.provisioningId }),
    ]);
    if (issued.status === 'fulfilled') {
      certificate = stripKey(issued.value);
      privateKey = issued.value.privateKey;
    }
    progress.certificate = issued.status === 'fulfilled';
    progress.thing = thing.status === 'fulfilled';
    const created = firstFailure(issued, thing);
    if (created !== undefined) throw created;
    if (!certificate) throw new Error('certificate creation settled without a certificate');

    step = 'attach';
    const certificateArn = certificate.certificateArn;
    const [policy, principal, recorded] = await Promise.allSettled([
      iot.attachPolicy(settings.policyName, certificateArn),
      iot.attachThingPrincipal(device.thingName, certificateArn),
      inventory.recordCertificate(device, certificate, clock()),
    ]);
    progress.policyAttached = policy.status === 'fulfilled';
    progress.thingAttached = principal.status === 'fulfilled';
    const attached = firstFailure(policy, principal, recorded);
    if (attached !== undefined) throw attached;

    step = 'activate';
    await inventory.markActive(device, progress, clock());
    return privateKey === undefined ? { certificate } : { certificate, privateKey };
  } catch (error) {
    await recordFailure(device, step, error, { certificate, progress }, deps, clock, logger);
    throw error;
  }
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
    // The record stays PROVISIONING with its provisioningId: the reconciler finds it by status.
    logger.error('could not record the failed registration', {
      failure,
      error: recordError instanceof Error ? describeError(recordError) : recordError,
    });
  }
  logger[outcome.rollback === 'COMPLETED' ? 'warn' : 'error']('registration rolled back', {
    rollback: outcome.rollback,
    leftovers: outcome.leftovers,
    metric: outcome.rollback === 'COMPLETED' ? 'RegistrationRolledBack' : 'RollbackIncomplete',
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
