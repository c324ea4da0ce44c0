import { IoTClient } from '@aws-sdk/client-iot';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCsr, toPem } from '../../sandbox/pki/csr.js';
import type { JsonEvent } from '../../shared/http/http-route.js';
import type { Claim } from '../../shared/inventory/model.js';
import { newClaim } from '../support/claims.js';
import { localDynamoDb, putClaim, readClaim, readDevice } from '../support/dynamodb.js';
import { lambdaContext, parseResponse, registerRequestEvent } from '../support/events.js';
import { answerLikeAwsIot } from '../support/iot-mock.js';
import { explicitCurveCsr } from '../support/openssl-csr.js';
import { loadRegisterHandler, type RegisterHandler } from '../support/register-handler.js';

const dynamo = localDynamoDb();
const iotStub = answerLikeAwsIot(mockClient(IoTClient));
let handler: RegisterHandler;
const nowSeconds = Math.floor(Date.now() / 1000);
// Minted at load: the it.each tables below are built before beforeAll runs.
const live: { token: string; claim: Claim } = newClaim({ expiresAt: nowSeconds + 3600 });
const good = buildCsr();

beforeAll(async () => {
  handler = await loadRegisterHandler();
  await putClaim(dynamo, live.claim);
});
afterAll(() => {
  iotStub.restore();
});

/** Sends one request and checks the contract for bad input: a 4xx problem, nothing written. */
async function expectRejected(event: JsonEvent, serialNumber = 'SN-BAD'): Promise<string> {
  const response = parseResponse(await handler(event, lambdaContext));
  expect(response.statusCode, JSON.stringify(response.body)).toBeGreaterThanOrEqual(400);
  expect(response.statusCode).toBeLessThan(500);
  expect(response.headers['content-type']).toBe('application/problem+json');
  expect(response.body.code).toEqual(expect.any(String));
  expect(await readDevice(dynamo, serialNumber)).toBeUndefined();
  expect((await readClaim(dynamo, live.claim.tokenHash))?.usesLeft).toBe(1);
  return response.body.code as string;
}

const body = (overrides: Record<string, unknown>) => ({
  claimToken: live.token,
  serialNumber: 'SN-BAD',
  csr: good.pem,
  ...overrides,
});
const post = (payload: unknown, change?: (event: APIGatewayProxyEventV2) => void) =>
  registerRequestEvent(payload, change);

describe('bad input to POST /register: always a specific 4xx, never a 5xx, nothing written', () => {
  it.each([
    ['truncated JSON', post('{"claimToken":'), 'INVALID_JSON'],
    ['JSON with a trailing comma', post('{"a":1,}'), 'INVALID_JSON'],
    ['an empty body', post(''), 'INVALID_JSON'],
    [
      'text/plain',
      post(body({}), (e) => {
        e.headers['content-type'] = 'text/plain';
      }),
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'form encoding',
      post('claimToken=x', (e) => {
        e.headers['content-type'] = 'application/x-www-form-urlencoded';
      }),
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'no content type',
      post(body({}), (e) => {
        delete e.headers['content-type'];
      }),
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['a 17 KiB body', post(body({ attributes: { pad: 'x'.repeat(17_000) } })), 'PAYLOAD_TOO_LARGE'],
    ['a missing CSR-less token field', post({ serialNumber: 'SN-BAD', csr: good.pem }), 'INVALID_REQUEST'],
    ['a numeric serial', post(body({ serialNumber: 42 })), 'INVALID_REQUEST'],
    ['a null CSR', post(body({ csr: null })), 'INVALID_REQUEST'],
    ['an over-long serial', post(body({ serialNumber: 'S'.repeat(200) })), 'INVALID_REQUEST'],
    ['an over-long CSR', post(body({ csr: 'A'.repeat(9000) })), 'INVALID_REQUEST'],
    ['attributes as an array', post(body({ attributes: ['model'] })), 'INVALID_REQUEST'],
    ['an attribute named constructor', post(body({ attributes: { constructor: 'x' } })), 'INVALID_REQUEST'],
    [
      'an attribute named __proto__',
      post(body({ attributes: JSON.parse('{"__proto__":"x"}') })),
      'INVALID_REQUEST',
    ],
    ['a serial with a path', post(body({ serialNumber: '../../etc/passwd' })), 'INVALID_SERIAL_NUMBER'],
    ['a serial with unicode', post(body({ serialNumber: 'SN-☃' })), 'INVALID_SERIAL_NUMBER'],
    ['a serial with a newline', post(body({ serialNumber: 'SN\nBAD' })), 'INVALID_SERIAL_NUMBER'],
    ['a token of the wrong format', post(body({ claimToken: 'password123' })), 'INVALID_CLAIM_TOKEN'],
    ['a well-formed unknown token', post(body({ claimToken: newClaim().token })), 'CLAIM_TOKEN_UNKNOWN'],
    ['a CSR that is not PEM', post(body({ csr: 'hello' })), 'CSR_MALFORMED'],
    ['a garbled CSR', post(body({ csr: good.pem.replace(/[A-Z]/g, 'x') })), 'CSR_MALFORMED'],
    [
      'a truncated CSR',
      post(body({ csr: toPem(good.der.subarray(0, 100), 'CERTIFICATE REQUEST') })),
      'CSR_MALFORMED',
    ],
    ['a tampered CSR', post(body({ csr: buildCsr({ tamper: true }).pem })), 'CSR_SIGNATURE_INVALID'],
    [
      'a CSR signed by another key',
      post(body({ csr: buildCsr({ signWithOtherKey: true }).pem })),
      'CSR_SIGNATURE_INVALID',
    ],
    ['an RSA-1024 key', post(body({ csr: buildCsr({ key: 'rsa-1024' }).pem })), 'CSR_KEY_TOO_WEAK'],
    ['a secp192r1 key', post(body({ csr: buildCsr({ key: 'ec-p192' }).pem })), 'CSR_KEY_UNSUPPORTED'],
    ['an Ed25519 key', post(body({ csr: buildCsr({ key: 'ed25519' }).pem })), 'CSR_KEY_UNSUPPORTED'],
    [
      'an EC key with explicit curve parameters',
      post(body({ csr: explicitCurveCsr() })),
      'CSR_KEY_UNSUPPORTED',
    ],
    [
      'a SHA-1 signature',
      post(body({ csr: buildCsr({ key: 'rsa-2048', hash: 'sha1' }).pem })),
      'CSR_SIGNATURE_ALGORITHM_UNSUPPORTED',
    ],
  ])('%s', async (_name, event, code) => {
    expect(await expectRejected(event)).toBe(code);
  });

  it.each([
    ['expired', { expiresAt: nowSeconds - 1 }, 'CLAIM_TOKEN_EXPIRED'],
    ['revoked', { status: 'REVOKED' as const }, 'CLAIM_TOKEN_REVOKED'],
    ['used up', { usesLeft: 0 }, 'CLAIM_TOKEN_USED_UP'],
  ])('a token that is %s', async (_name, overrides, code) => {
    const { token, claim } = newClaim({ expiresAt: nowSeconds + 3600, ...overrides });
    await putClaim(dynamo, claim);

    expect(await expectRejected(post(body({ claimToken: token })))).toBe(code);
  });

  it('any JSON value as the body', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        await expectRejected(post(JSON.stringify(value)));
      }),
      { numRuns: 150 },
    );
  });

  it('any string as the body', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (text) => {
        await expectRejected(post(text));
      }),
      { numRuns: 150 },
    );
  });

  it('a body with one field replaced by any JSON value', async () => {
    // A replacement can be valid (any serial, any string attributes), so the base token is a
    // well-formed one nobody issued: no variant may write, and none may answer 5xx.
    const unknownToken = newClaim().token;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('claimToken', 'serialNumber', 'csr', 'attributes'),
        fc.jsonValue(),
        async (field, value) => {
          await expectRejected(post(body({ claimToken: unknownToken, [field]: value })));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a CSR with any one byte changed, or cut anywhere', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(good.der.length - 1),
        fc.integer({ min: 1, max: 255 }),
        fc.boolean(),
        async (index, xor, cut) => {
          const der = Buffer.from(good.der);
          der[index] = (der[index] as number) ^ xor;
          const mangled = cut ? good.der.subarray(0, index) : der;
          await expectRejected(post(body({ csr: toPem(mangled, 'CERTIFICATE REQUEST') })));
        },
      ),
      { numRuns: 200 },
    );
  });
});
