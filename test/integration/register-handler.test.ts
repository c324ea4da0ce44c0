import { IoTClient } from '@aws-sdk/client-iot';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { newClaim, newSerial } from '../support/claims.js';
import { localDynamoDb, putClaim, readDevice } from '../support/dynamodb.js';
import { lambdaContext, parseResponse, registerRequestEvent } from '../support/events.js';
import { answerLikeAwsIot } from '../support/iot-mock.js';
import { loadRegisterHandler, type RegisterHandler } from '../support/register-handler.js';

const dynamo = localDynamoDb();
// The handler builds its own IoTClient at module load, so the stub goes on the class.
const iotStub = answerLikeAwsIot(mockClient(IoTClient));
let handler: RegisterHandler;

beforeAll(async () => {
  handler = await loadRegisterHandler();
});

afterAll(() => {
  iotStub.restore();
});

async function post(body: unknown) {
  return parseResponse(await handler(registerRequestEvent(body), lambdaContext));
}

async function seededToken(): Promise<string> {
  const { token, claim } = newClaim();
  await putClaim(dynamo, { ...claim, expiresAt: Math.floor(Date.now() / 1000) + 3600 });
  return token;
}

describe('functions/register handler (DynamoDB Local via AWS_ENDPOINT_URL_DYNAMODB)', () => {
  it('registers a device from a real HTTP API event: 201 with the certificate and endpoints', async () => {
    const serial = newSerial();

    const response = await post({
      claimToken: await seededToken(),
      serialNumber: serial,
      csr: buildCsr().pem,
    });

    expect(response.statusCode).toBe(201);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.body).toMatchObject({
      thingName: serial,
      credentialsProvider: { roleAlias: 'device-role-alias' },
    });
    expect(await readDevice(dynamo, serial)).toMatchObject({ status: 'ACTIVE' });
  });

  it('answers 401 problem+json to a well-formed token nobody issued', async () => {
    const response = await post({
      claimToken: newClaim().token,
      serialNumber: newSerial(),
      csr: buildCsr().pem,
    });

    expect(response.statusCode).toBe(401);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(response.body.code).toBe('CLAIM_TOKEN_UNKNOWN');
  });

  it.each([
    ['an empty object', {}],
    ['a string', 'hello'],
    ['a number', 42],
    ['nested garbage', { claimToken: { $ne: null }, serialNumber: ['x'], csr: 1 }],
    [
      'a prototype-pollution attempt',
      JSON.parse('{"__proto__":{"admin":true},"claimToken":"x","serialNumber":"y"}'),
    ],
  ])('answers %s with a 4xx problem, never a 5xx', async (_name, body) => {
    const response = await post(body);

    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    expect(response.statusCode).toBeLessThan(500);
    expect(response.body.code).toEqual(expect.any(String));
  });
});
