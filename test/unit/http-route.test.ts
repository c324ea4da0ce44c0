import { describe, expect, it } from 'vitest';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { generateClaimToken } from '../../shared/claims/token.js';
import { ClaimExpiredError, ThrottledError } from '../../shared/errors.js';
import { jsonRoute } from '../../shared/http/http-route.js';
import { createLogger } from '../../shared/logger.js';
import { lambdaContext, parseResponse, registerRequestEvent } from '../support/events.js';

const lines: string[] = [];
const logger = createLogger({}, 'info', (line) => lines.push(line));
const echo = jsonRoute({ maxBodyBytes: 64, logger }, async (event) => ({
  status: 201,
  body: { got: event.json },
}));

async function invoke(handler: typeof echo, event: ReturnType<typeof registerRequestEvent>) {
  return parseResponse(await handler(event, lambdaContext));
}

describe('jsonRoute', () => {
  it('hands the parsed JSON body to the route and answers with its status', async () => {
    const response = await invoke(echo, registerRequestEvent({ a: 1 }));

    expect(response).toMatchObject({ statusCode: 201, body: { got: { a: 1 } } });
    expect(response.headers['content-type']).toBe('application/json');
  });

  it('decodes a base64-encoded body', async () => {
    const event = registerRequestEvent('', (e) => {
      e.body = Buffer.from('{"a":2}').toString('base64');
      e.isBase64Encoded = true;
    });

    expect((await invoke(echo, event)).body).toEqual({ got: { a: 2 } });
  });

  it('answers 413 PAYLOAD_TOO_LARGE above the byte limit, before parsing', async () => {
    const response = await invoke(echo, registerRequestEvent({ pad: 'x'.repeat(100) }));

    expect(response.statusCode).toBe(413);
    expect(response.body.code).toBe('PAYLOAD_TOO_LARGE');
    expect(response.headers['content-type']).toBe('application/problem+json');
  });

  it('answers 415 for a body that is not declared as JSON', async () => {
    const event = registerRequestEvent({ a: 1 }, (e) => {
      e.headers['content-type'] = 'text/plain';
    });

    expect((await invoke(echo, event)).body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('accepts a JSON content type with a charset, in any header case', async () => {
    const event = registerRequestEvent({ a: 1 }, (e) => {
      delete e.headers['content-type'];
      e.headers['Content-Type'] = 'application/json; charset=utf-8';
    });

    expect((await invoke(echo, event)).statusCode).toBe(201);
  });

  it('answers 400 INVALID_JSON for a body that does not parse', async () => {
    const response = await invoke(echo, registerRequestEvent('{"a":'));

    expect(response).toMatchObject({ statusCode: 400, body: { code: 'INVALID_JSON', status: 400 } });
  });

  it('renders a domain error as problem+json with its code, title and the request id', async () => {
    const failing = jsonRoute({ maxBodyBytes: 64, logger }, async () => {
      throw new ClaimExpiredError('this claim token has expired');
    });

    const response = await invoke(failing, registerRequestEvent({}));

    expect(response.statusCode).toBe(403);
    expect(response.body).toMatchObject({
      code: 'CLAIM_TOKEN_EXPIRED',
      title: 'The claim token has expired',
      detail: 'this claim token has expired',
      requestId: 'CQbYwjVJjoEEMxw=',
    });
  });

  it('sends Retry-After with a throttling error', async () => {
    const failing = jsonRoute({ maxBodyBytes: 64, logger }, async () => {
      throw new ThrottledError('AWS IoT is throttling', { retryAfterSeconds: 2 });
    });

    const response = await invoke(failing, registerRequestEvent({}));

    expect(response.statusCode).toBe(429);
    expect(response.headers['retry-after']).toBe('2');
  });

  it('turns an unknown error into a bare 500 without its message or stack in the response', async () => {
    const failing = jsonRoute({ maxBodyBytes: 64, logger }, async () => {
      throw new Error('AccessDenied: arn:aws:iam::123456789012:role/secret-role');
    });

    const response = await invoke(failing, registerRequestEvent({}));

    expect(response.statusCode).toBe(500);
    expect(response.body).toEqual({
      type: 'urn:fleet-provisioning:problem:internal-error',
      title: 'Internal error',
      status: 500,
      code: 'INTERNAL_ERROR',
      requestId: 'CQbYwjVJjoEEMxw=',
    });
  });

  it('logs an unknown error with its message and stack, claim tokens and PEM blocks redacted', async () => {
    const token = generateClaimToken();
    const { pem, privateKey } = buildCsr();
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const failing = jsonRoute({ maxBodyBytes: 64, logger }, async function failingRoute() {
      throw new Error(
        `1 validation error: claimToken '${token}', csr '${pem.trim()}', key '${keyPem.trim()}'`,
      );
    });
    lines.length = 0;

    const response = await invoke(failing, registerRequestEvent({}));

    expect(response.body).toEqual({
      type: 'urn:fleet-provisioning:problem:internal-error',
      title: 'Internal error',
      status: 500,
      code: 'INTERNAL_ERROR',
      requestId: 'CQbYwjVJjoEEMxw=',
    });
    const logged = lines.join('\n');
    expect(JSON.parse(lines.at(-1) ?? '{}').error).toEqual({
      name: 'Error',
      message:
        "1 validation error: claimToken '[redacted claim token]', csr '[redacted CERTIFICATE REQUEST]', " +
        "key '[redacted PRIVATE KEY]'",
      stack: expect.stringContaining('failingRoute'),
    });
    expect(logged).not.toContain(token.slice(4));
    for (const block of [pem, keyPem]) expect(logged).not.toContain(block.split('\n')[1]);
  });

  it('logs a domain error by name and code only', async () => {
    const failing = jsonRoute({ maxBodyBytes: 64, logger }, async () => {
      throw new ClaimExpiredError('this claim token has expired');
    });
    lines.length = 0;

    await invoke(failing, registerRequestEvent({}));

    expect(JSON.parse(lines.at(-1) ?? '{}').error).toEqual({
      name: 'ClaimExpiredError',
      code: 'CLAIM_TOKEN_EXPIRED',
    });
  });
});
