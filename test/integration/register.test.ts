import {
  AttachPolicyCommand,
  CreateCertificateFromCsrCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteThingCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  type IoTClient,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BuiltCsr, buildCsr } from '../../sandbox/pki/csr.js';
import type { AppError } from '../../shared/errors.js';
import type { Claim } from '../../shared/inventory/model.js';
import { AwsIotGateway } from '../../shared/iot/aws-iot-gateway.js';
import { endpointResolver } from '../../shared/iot/endpoints.js';
import { createLogger } from '../../shared/logger.js';
import { type RegistrationDeps, registerDevice } from '../../shared/registration/register-device.js';
import { parseRegisterRequest } from '../../shared/registration/request.js';
import { NOW, newClaim, newSerial } from '../support/claims.js';
import { localDynamoDb, localInventory, putClaim, readClaim, readDevice } from '../support/dynamodb.js';
import { codeRejectedBy } from '../support/error-code.js';
import {
  CREDENTIALS_ENDPOINT,
  DATA_ENDPOINT,
  iotError,
  newCertificate,
  stubbedIot,
} from '../support/iot-mock.js';

const dynamo = localDynamoDb();
const inventory = localInventory(dynamo);
/** One key (and CSR) per device: the same serial sends the same CSR again, another device its own. */
const csrs = new Map<string, BuiltCsr>();
function csrFor(serialNumber: string): BuiltCsr {
  const csr = csrs.get(serialNumber) ?? buildCsr({ key: 'ec-p256' });
  csrs.set(serialNumber, csr);
  return csr;
}
let iot: { client: IoTClient; stub: AwsClientStub<IoTClient> };

beforeEach(() => {
  iot = stubbedIot();
});
afterEach(() => {
  iot.stub.restore();
});

function deps(): RegistrationDeps {
  const gateway = new AwsIotGateway(iot.client);
  return {
    inventory,
    iot: gateway,
    endpoints: endpointResolver(gateway, {}),
    settings: {
      policyName: 'device-policy',
      roleAlias: 'device-role-alias',
      rootCaPem: 'ROOT CA',
      defaultThingNamePrefix: '',
    },
    clock: () => NOW,
    logger: createLogger({}, 'error', () => {}),
  };
}

function register(
  token: string,
  serialNumber: string,
  body: { csr?: string } = { csr: csrFor(serialNumber).pem },
) {
  return registerDevice(parseRegisterRequest({ claimToken: token, serialNumber, ...body }), deps());
}

async function seed(overrides: Partial<Claim> = {}) {
  const seeded = newClaim(overrides);
  await putClaim(dynamo, seeded.claim);
  return seeded;
}

function callsOf(command: Parameters<AwsClientStub<IoTClient>['commandCalls']>[0]) {
  return iot.stub.commandCalls(command);
}

describe('registerDevice (DynamoDB Local, stubbed IoT transport)', () => {
  it('builds the whole chain and answers 201 with everything the device needs', async () => {
    const { token, claim } = await seed();
    const serial = newSerial();

    const result = await register(token, serial);

    expect(result.status).toBe(201);
    expect(result.body).toMatchObject({
      thingName: serial,
      serialNumber: serial,
      certificateArn: expect.stringContaining(result.body.certificateId),
      credentialsProvider: {
        endpoint: CREDENTIALS_ENDPOINT,
        roleAlias: 'device-role-alias',
        url: `https://${CREDENTIALS_ENDPOINT}/role-aliases/device-role-alias/credentials`,
      },
      iotDataEndpoint: DATA_ENDPOINT,
      rootCaPem: 'ROOT CA',
    });
    expect(result.body).not.toHaveProperty('privateKey');
    expect(callsOf(CreateCertificateFromCsrCommand)[0]?.args[0].input).toEqual({
      certificateSigningRequest: csrFor(serial).pem,
      setAsActive: true,
    });
    expect(callsOf(UpdateCertificateCommand)).toHaveLength(0);
    expect(callsOf(AttachPolicyCommand)[0]?.args[0].input).toEqual({
      policyName: 'device-policy',
      target: result.body.certificateArn,
    });
    expect(await readDevice(dynamo, serial)).toMatchObject({
      status: 'ACTIVE',
      certificateId: result.body.certificateId,
      batchId: 'B1',
      claimId: claim.claimId,
      progress: {
        certificate: true,
        thing: true,
        policyAttached: true,
        thingAttached: true,
        certificateActive: true,
      },
    });
    expect((await readClaim(dynamo, claim.tokenHash))?.usesLeft).toBe(0);
  });

  it("stamps the claim's thing-name prefix and attributes, the claim's winning over the device's", async () => {
    const { token } = await seed({
      thingNamePrefix: 'acme-',
      attributes: { line: 'L3', model: 'from-claim' },
    });
    const serial = newSerial();

    const result = await registerDevice(
      parseRegisterRequest({
        claimToken: token,
        serialNumber: serial,
        csr: csrFor(serial).pem,
        attributes: { model: 'X1', fw: '1.0' },
      }),
      deps(),
    );

    expect(result.body.thingName).toBe(`acme-${serial}`);
    expect((await readDevice(dynamo, serial))?.attributes).toEqual({
      line: 'L3',
      model: 'from-claim',
      fw: '1.0',
    });
  });

  it('replays a finished registration with 200 and the same certificate, issuing no second one', async () => {
    const { token } = await seed();
    const serial = newSerial();
    const first = await register(token, serial);

    const again = await register(token, serial);

    expect(again.status).toBe(200);
    expect(again.body.certificateId).toBe(first.body.certificateId);
    expect(callsOf(CreateCertificateFromCsrCommand)).toHaveLength(1);
  });

  it('answers 409 SERIAL_ALREADY_REGISTERED to the same token with a different CSR after success', async () => {
    const { token } = await seed();
    const serial = newSerial();
    await register(token, serial);

    expect(await codeRejectedBy(register(token, serial, { csr: buildCsr({ key: 'ec-p384' }).pem }))).toBe(
      'SERIAL_ALREADY_REGISTERED',
    );
  });

  it('answers 409 SERIAL_ALREADY_REGISTERED to another token claiming a registered serial, spending nothing', async () => {
    const { token } = await seed();
    const other = await seed();
    const serial = newSerial();
    await register(token, serial);

    expect(await codeRejectedBy(register(other.token, serial))).toBe('SERIAL_ALREADY_REGISTERED');
    expect((await readClaim(dynamo, other.claim.tokenHash))?.usesLeft).toBe(1);
  });

  it.each([
    ['an unknown token', 'CLAIM_TOKEN_UNKNOWN', null],
    ['an expired token', 'CLAIM_TOKEN_EXPIRED', { expiresAt: Math.floor(NOW.getTime() / 1000) - 1 }],
    ['a revoked token', 'CLAIM_TOKEN_REVOKED', { status: 'REVOKED' as const }],
    ['a used-up token', 'CLAIM_TOKEN_USED_UP', { usesLeft: 0 }],
    ['a token bound to another serial', 'SERIAL_NOT_ALLOWED', { serialNumber: 'SN-someone-else' }],
  ])('refuses %s with %s and writes nothing', async (_name, code, overrides) => {
    const seeded = overrides === null ? newClaim() : await seed(overrides);
    const serial = newSerial();

    expect(await codeRejectedBy(register(seeded.token, serial))).toBe(code);
    expect(await readDevice(dynamo, serial)).toBeUndefined();
    expect((await readClaim(dynamo, seeded.claim.tokenHash))?.usesLeft).toBe(
      overrides === null ? undefined : seeded.claim.usesLeft,
    );
    expect(
      iot.stub.calls().filter((call) => !(call.args[0].constructor.name === 'DescribeEndpointCommand')),
    ).toHaveLength(0);
  });

  it('refuses a bad CSR before reading or writing anything', async () => {
    const { token, claim } = await seed();
    const serial = newSerial();

    expect(await codeRejectedBy(register(token, serial, { csr: buildCsr({ key: 'rsa-1024' }).pem }))).toBe(
      'CSR_KEY_TOO_WEAK',
    );
    expect(await readDevice(dynamo, serial)).toBeUndefined();
    expect((await readClaim(dynamo, claim.tokenHash))?.usesLeft).toBe(1);
  });

  it('refuses server-side key generation when the batch does not allow it', async () => {
    const { token } = await seed();

    expect(await codeRejectedBy(register(token, newSerial(), {}))).toBe('SERVER_KEYGEN_NOT_ALLOWED');
  });

  it('returns the generated private key once when the batch allows server-side key generation', async () => {
    const { token } = await seed({ allowServerKeygen: true });
    const serial = newSerial();

    const result = await register(token, serial, {});

    expect(result.status).toBe(201);
    expect(result.body.privateKey).toContain('PRIVATE KEY');
    expect(JSON.stringify(await readDevice(dynamo, serial))).not.toContain('PRIVATE KEY');
  });

  it('lets exactly one of 50 racing registrations spend a single-use token', async () => {
    const { token, claim } = await seed();
    const serials = Array.from({ length: 50 }, () => newSerial('RACE'));

    const results = await Promise.allSettled(serials.map((serial) => register(token, serial)));

    const winners = results.filter((result) => result.status === 'fulfilled');
    const losers = await Promise.all(
      results
        .filter((result) => result.status === 'rejected')
        .map((result) => codeRejectedBy(Promise.reject(result.reason))),
    );
    expect(winners).toHaveLength(1);
    expect(new Set(losers)).toSatisfy((codes: Set<string>) =>
      [...codes].every((code) => code === 'CLAIM_TOKEN_USED_UP' || code === 'REGISTRATION_CONFLICT'),
    );
    const devices = await Promise.all(serials.map((serial) => readDevice(dynamo, serial)));
    expect(devices.filter((device) => device !== undefined)).toHaveLength(1);
    expect(callsOf(CreateCertificateFromCsrCommand)).toHaveLength(1);
    expect((await readClaim(dynamo, claim.tokenHash))?.usesLeft).toBe(0);
  });

  it('issues one certificate when the same device sends its registration 10 times at once', async () => {
    const { token } = await seed();
    const serial = newSerial();

    const results = await Promise.allSettled(Array.from({ length: 10 }, () => register(token, serial)));

    expect(results.filter((result) => result.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
    expect(callsOf(CreateCertificateFromCsrCommand)).toHaveLength(1);
    const after = await register(token, serial);
    expect(after.status).toBe(200);
  });

  describe('when AWS IoT fails after the certificate exists, before the commit', () => {
    it('rolls the chain back in AWS order, deactivating the certificate (created ACTIVE) before deleting it, and records FAILED', async () => {
      const { token } = await seed();
      const serial = newSerial();
      iot.stub.on(CreateThingCommand).rejects(iotError('InvalidRequestException'));

      expect(await codeRejectedBy(register(token, serial))).toBe('InvalidRequestException');

      const certificateId = callsOf(DeleteCertificateCommand)[0]?.args[0].input.certificateId;
      expect(certificateId).toEqual(expect.stringMatching(/^[0-9a-f]{64}$/));
      expect(callsOf(UpdateCertificateCommand).map((call) => call.args[0].input)).toEqual([
        { certificateId, newStatus: 'INACTIVE' },
      ]);
      expect(callsOf(DetachPolicyCommand)).toHaveLength(1);
      expect(callsOf(DetachThingPrincipalCommand)).toHaveLength(1);
      expect(callsOf(AttachPolicyCommand)).toHaveLength(0);
      const device = await readDevice(dynamo, serial);
      // The deleted certificate is history (in the failure), no longer the record's certificate.
      expect(device).not.toHaveProperty('certificateId');
      expect(device).toMatchObject({
        status: 'FAILED',
        failure: {
          step: 'create',
          error: 'InvalidRequestException',
          rollback: 'COMPLETED',
          leftovers: [],
          certificateId,
        },
        progress: {
          certificate: false,
          thing: false,
          policyAttached: false,
          thingAttached: false,
          certificateActive: false,
        },
      });
    });

    it('records an incomplete rollback with its leftovers when the certificate cannot be deleted', async () => {
      const { token } = await seed();
      const serial = newSerial();
      iot.stub.on(CreateThingCommand).rejects(iotError('InvalidRequestException'));
      iot.stub.on(DeleteCertificateCommand).rejects(iotError('InvalidRequestException'));

      await codeRejectedBy(register(token, serial));

      const device = await readDevice(dynamo, serial);
      expect(device?.failure).toMatchObject({
        rollback: 'INCOMPLETE',
        leftovers: [`inactive-certificate:${device?.certificateId}`],
      });
    });

    it('lets the same device retry with the same single-use token and succeed', async () => {
      const { token, claim } = await seed();
      const serial = newSerial();
      iot.stub.on(CreateThingCommand).rejectsOnce(iotError('InternalFailureException'));
      expect(await codeRejectedBy(register(token, serial))).toBe('SERVICE_UNAVAILABLE');

      const retry = await register(token, serial);

      expect(retry.status).toBe(201);
      const device = await readDevice(dynamo, serial);
      expect(device).toMatchObject({ status: 'ACTIVE', certificateId: retry.body.certificateId });
      expect(device).not.toHaveProperty('failure');
      expect((device as unknown as { failures: unknown[] }).failures).toHaveLength(1);
      expect((await readClaim(dynamo, claim.tokenHash))?.usesLeft).toBe(0);
    });
  });

  describe('when an attachment fails beside the commit', () => {
    it('keeps the registration (ACTIVE, the failure noted, 503 with Retry-After); the retry re-attaches and clears the note', async () => {
      const { token } = await seed();
      const serial = newSerial();
      iot.stub.on(AttachPolicyCommand).rejectsOnce(iotError('InvalidRequestException'));

      let thrown: AppError | undefined;
      await register(token, serial).catch((error: AppError) => {
        thrown = error;
      });

      expect(thrown).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfterSeconds: expect.any(Number) });
      expect(callsOf(DeleteCertificateCommand)).toHaveLength(0);
      expect(callsOf(DetachPolicyCommand)).toHaveLength(0);
      expect(await readDevice(dynamo, serial)).toMatchObject({
        status: 'ACTIVE',
        attachmentsPending: { error: 'InvalidRequestException' },
      });

      const retry = await register(token, serial);

      expect(retry.status).toBe(200);
      expect(callsOf(AttachPolicyCommand).map((call) => call.args[0].input)).toEqual([
        { policyName: 'device-policy', target: retry.body.certificateArn },
        { policyName: 'device-policy', target: retry.body.certificateArn },
      ]);
      expect(await readDevice(dynamo, serial)).not.toHaveProperty('attachmentsPending');
    });
  });

  it('tries a throttled creation again before giving up on it', async () => {
    const { token } = await seed();
    iot.stub
      .on(CreateCertificateFromCsrCommand)
      .rejectsOnce(iotError('ThrottlingException'))
      .callsFake(() => newCertificate());

    const result = await register(token, newSerial());

    expect(result.status).toBe(201);
    expect(callsOf(CreateCertificateFromCsrCommand)).toHaveLength(2);
  });

  it('pauses when AWS IoT keeps throttling certificate creation (THROTTLED, Retry-After, the thing kept), and the retry resumes', async () => {
    const { token } = await seed();
    const serial = newSerial();
    // The SDK's attempts are the stub's one call; the saga tries THROTTLED_CALL_RETRIES more times.
    iot.stub
      .on(CreateCertificateFromCsrCommand)
      .rejectsOnce(iotError('ThrottlingException'))
      .rejectsOnce(iotError('ThrottlingException'))
      .rejectsOnce(iotError('ThrottlingException'))
      .callsFake(() => newCertificate());

    let thrown: AppError | undefined;
    await register(token, serial).catch((error: AppError) => {
      thrown = error;
    });

    expect(thrown).toMatchObject({ code: 'THROTTLED', retryAfterSeconds: expect.any(Number) });
    expect(callsOf(DeleteThingCommand)).toHaveLength(0);
    expect(await readDevice(dynamo, serial)).toMatchObject({
      status: 'PROVISIONING',
      leaseUntil: 0,
      progress: { thing: true, certificate: false },
    });

    const retry = await register(token, serial);

    expect(retry.status).toBe(201);
    expect(callsOf(CreateThingCommand)).toHaveLength(1);
    expect(await readDevice(dynamo, serial)).toMatchObject({ status: 'ACTIVE' });
  });

  it('answers THING_NAME_TAKEN, and deletes only its own certificate, when a stranger owns the thing name', async () => {
    const { token } = await seed();
    const serial = newSerial();
    iot.stub.on(CreateThingCommand).rejects(iotError('ResourceAlreadyExistsException'));

    expect(await codeRejectedBy(register(token, serial))).toBe('THING_NAME_TAKEN');
    expect(callsOf(DeleteCertificateCommand)).toHaveLength(1);
    expect(callsOf(DeleteThingCommand)).toHaveLength(0);
  });

  it('answers CSR_REJECTED when AWS IoT refuses a CSR our checks accepted, and removes the thing', async () => {
    const { token } = await seed();
    iot.stub.on(CreateCertificateFromCsrCommand).rejects(iotError('InvalidRequestException'));

    expect(await codeRejectedBy(register(token, newSerial()))).toBe('CSR_REJECTED');
    expect(callsOf(DeleteThingCommand)).toHaveLength(1);
  });
});
