import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ApiConfig, apiConfigOf, type PrintedService } from '../../sandbox/front-door/api-config.js';
import { type RunningFrontDoor, startFrontDoor } from '../../sandbox/front-door/server.js';
import { SIGV4_MESSAGES } from '../../sandbox/front-door/sigv4.js';

/**
 * The front door against a stand-in for serverless-offline's Lambda Invoke API, with the routes and
 * limits `serverless print` resolves from serverless.yml.
 */
type Behaviour = (
  event: Record<string, unknown>,
) => Promise<{ status?: number; error?: boolean; payload: string }>;

const region = 'eu-west-1';
const admin = { accessKeyId: 'AKIASANDBOXADMIN0001', secretAccessKey: 'sandbox-admin-secret' };
let api: ApiConfig;
let lambda: Server;
let lambdaEndpoint: string;
let door: RunningFrontDoor | undefined;
const invoked: { functionName: string; event: Record<string, unknown> }[] = [];
/** The door's log lines (request id, route, status, and why it refused). */
const logged: string[] = [];
let behaviour: Behaviour;

const echo: Behaviour = async (event) => ({
  payload: JSON.stringify({ statusCode: 201, headers: { 'x-echo': 'yes' }, body: JSON.stringify(event) }),
});

beforeAll(async () => {
  const { stdout } = await promisify(execFile)(
    'npx',
    ['serverless', 'print', '--stage', 'local', '--region', region, '--format', 'json'],
    { env: { ...process.env, SLS_TELEMETRY_DISABLED: '1' }, maxBuffer: 16 * 1024 * 1024 },
  );
  api = apiConfigOf(JSON.parse(stdout) as PrintedService);
  lambda = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const functionName = decodeURIComponent(
        /\/functions\/([^/]+)\/invocations$/.exec(request.url ?? '')?.[1] ?? '',
      );
      const event = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      invoked.push({ functionName, event });
      const result = await behaviour(event);
      response.writeHead(result.status ?? 200, result.error ? { 'x-amz-function-error': 'Unhandled' } : {});
      response.end(result.payload);
    });
  });
  await new Promise<void>((resolve) => lambda.listen(0, '127.0.0.1', resolve));
  lambdaEndpoint = `http://127.0.0.1:${(lambda.address() as AddressInfo).port}`;
}, 30_000);

afterAll(async () => {
  await door?.close();
  lambda.close();
});

beforeEach(async () => {
  await door?.close();
  door = undefined;
  invoked.length = 0;
  logged.length = 0;
  behaviour = echo;
});

async function open(options: { integrationTimeoutMs?: number; api?: ApiConfig } = {}): Promise<string> {
  door = await startFrontDoor(
    {
      api: options.api ?? api,
      lambdaEndpoint,
      region,
      accountId: '000000000000',
      credentials: [admin],
      log: (line) => logged.push(line),
      ...(options.integrationTimeoutMs ? { integrationTimeoutMs: options.integrationTimeoutMs } : {}),
    },
    '127.0.0.1',
    0,
  );
  return door.url;
}

/** Holds every function invocation until `release()`, so that requests pile up as in a burst. */
function holdFunctions(): { release: () => void } {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  behaviour = async (event) => {
    await held;
    return echo(event);
  };
  return { release: () => release() };
}

/** Waits (10 s at most) until `done()`. */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

async function call(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const register = (base: string) =>
  call(`${base}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });

async function signed(
  base: string,
  method: string,
  path: string,
  options: { credentials?: typeof admin; signingDate?: Date; body?: string } = {},
) {
  const url = new URL(path, base);
  const signer = new SignatureV4({
    service: 'execute-api',
    region,
    credentials: options.credentials ?? admin,
    sha256: Hash.bind(null, 'sha256'),
  });
  const request = await signer.sign(
    {
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: {
        host: url.host,
        ...(options.body ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.body ? { body: options.body } : {}),
    },
    options.signingDate ? { signingDate: options.signingDate } : {},
  );
  return call(url.toString(), {
    method,
    headers: request.headers as Record<string, string>,
    ...(options.body ? { body: options.body } : {}),
  });
}

describe('the front door (HTTP API in front of the functions)', () => {
  it('reads the routes, the stage and route throttling and reserved concurrency from serverless.yml', () => {
    expect(api.throttle).toEqual({ rateLimit: 100, burstLimit: 200 });
    expect(api.routeThrottles).toEqual({
      'POST /register': { rateLimit: 15, burstLimit: 10 },
      'POST /rotation': { rateLimit: 5, burstLimit: 5 },
      'GET /rotation': { rateLimit: 50, burstLimit: 100 },
    });
    expect(api.routes.map((route) => [route.routeKey, route.iam, route.reservedConcurrency])).toEqual(
      expect.arrayContaining([
        ['POST /register', false, 175],
        ['POST /claims', true, undefined],
        ['GET /devices/{serialNumber}', true, undefined],
        ['POST /devices/{serialNumber}/decommission', true, undefined],
      ]),
    );
  });

  it("gives each request its own id, in the apigw-requestid header and the function's event", async () => {
    const base = await open();

    const first = await register(base);
    const second = await register(base);

    const ids = [first, second].map((answer) => answer.headers.get('apigw-requestid'));
    expect(ids[0]).toMatch(/^[A-Za-z0-9_-]{15}=$/);
    expect(ids[1]).not.toBe(ids[0]);
    expect(invoked.map(({ event }) => (event.requestContext as { requestId: string }).requestId)).toEqual(
      ids,
    );
  });

  it('sends the function a payload 2.0 event and answers with its response', async () => {
    const base = await open();

    const answer = await call(`${base}/register?a=1&a=2`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: 'c=1' },
      body: '{"x":1}',
    });

    expect(answer.status).toBe(201);
    expect(answer.headers.get('x-echo')).toBe('yes');
    expect(invoked[0]?.functionName).toBe('fleet-provisioning-local-register');
    expect(JSON.parse(answer.text)).toMatchObject({
      version: '2.0',
      routeKey: 'POST /register',
      rawPath: '/register',
      rawQueryString: 'a=1&a=2',
      queryStringParameters: { a: '1,2' },
      cookies: ['c=1'],
      body: '{"x":1}',
      isBase64Encoded: false,
      requestContext: { http: { method: 'POST', path: '/register' }, stage: '$default' },
    });
  });

  it('answers any other JSON result as 200 application/json, as payload format 2.0 does', async () => {
    behaviour = async () => ({ payload: '{"hello":"world"}' });
    const base = await open();

    const answer = await register(base);

    expect([answer.status, answer.headers.get('content-type'), answer.text]).toEqual([
      200,
      'application/json',
      '{"hello":"world"}',
    ]);
  });

  it('answers a function error with 500 {"message":"Internal Server Error"}, never its message or stack', async () => {
    behaviour = async () => ({
      error: true,
      payload: JSON.stringify({
        errorMessage: "Cannot find module 'register'",
        errorType: 'Error',
        trace: ['at x'],
      }),
    });
    const base = await open();

    const answer = await register(base);

    expect([answer.status, answer.text]).toEqual([500, '{"message":"Internal Server Error"}']);
  });

  it('answers a response it cannot use (a statusCode that is no status) with 500', async () => {
    behaviour = async () => ({ payload: JSON.stringify({ statusCode: 'soon', body: 'x' }) });
    const base = await open();

    expect((await register(base)).status).toBe(500);
  });

  it('answers 503 {"message":"Service Unavailable"} when the integration times out', async () => {
    behaviour = () => new Promise((resolve) => setTimeout(() => resolve({ payload: '{}' }), 1_000));
    const base = await open({ integrationTimeoutMs: 200 });

    const answer = await register(base);

    expect([answer.status, answer.text]).toEqual([503, '{"message":"Service Unavailable"}']);
  });

  it('answers 404 {"message":"Not Found"} for a route serverless.yml does not declare', async () => {
    const base = await open();

    const answers = await Promise.all([call(`${base}/nowhere`), call(`${base}/register`)]);

    expect(answers.map((answer) => [answer.status, answer.text])).toEqual([
      [404, '{"message":"Not Found"}'],
      [404, '{"message":"Not Found"}'],
    ]);
    expect(invoked).toEqual([]);
  });

  it('answers a burst beyond register’s reserved concurrency (175) with 500s when no throttling holds it first', async () => {
    const held = holdFunctions();
    // Without its route's own limits, register is on the stage default (burst 200).
    const base = await open({ api: { ...api, routeThrottles: {} } });

    const burst = Array.from({ length: 185 }, () => register(base));
    // Released only once the whole burst has arrived (175 held, 10 refused), however loaded the machine.
    await until(
      () => invoked.length >= 175 && logged.filter((l) => l.includes('reserved concurrency')).length >= 10,
    );
    held.release();
    const answers = await Promise.all(burst);

    expect(invoked).toHaveLength(175);
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(175);
    const refused = answers.filter((answer) => answer.status !== 201);
    expect(refused).toHaveLength(10);
    for (const answer of refused)
      expect([answer.status, answer.text]).toEqual([500, '{"message":"Internal Server Error"}']);
  });

  it('lets a burst at register in only as its route settings allow, under its reserved concurrency: 201 or 429, never a 500', async () => {
    const held = holdFunctions();
    const base = await open();

    const burst = Array.from({ length: 110 }, () => register(base));
    await new Promise((resolve) => setTimeout(resolve, 500));
    held.release();
    const answers = await Promise.all(burst);

    // Burst 10, then 15/s: 10 at once, and a few more while the functions are held.
    const admitted = answers.filter((answer) => answer.status === 201).length;
    expect(admitted).toBeGreaterThanOrEqual(10);
    expect(admitted).toBeLessThanOrEqual(10 + 15);
    expect(answers.filter((answer) => answer.status === 429)).toHaveLength(110 - admitted);
    expect(invoked).toHaveLength(admitted);
  });

  it('throttles a route with its own lower limit (RouteSettings) with 429 where the stage default would not, and keeps the default for the others', async () => {
    const base = await open({
      api: {
        ...api,
        throttle: { rateLimit: 1, burstLimit: 5 },
        routeThrottles: { 'POST /register': { rateLimit: 1, burstLimit: 2 } },
      },
    });

    const registers = await Promise.all(Array.from({ length: 5 }, () => register(base)));
    const lists = await Promise.all(Array.from({ length: 6 }, () => signed(base, 'GET', '/devices')));

    expect(registers.map((answer) => answer.status).sort()).toEqual([201, 201, 429, 429, 429]);
    // register's requests took nothing from the stage's bucket: the other route still has its 5.
    expect(lists.map((answer) => answer.status).sort()).toEqual([201, 201, 201, 201, 201, 429]);
    expect(logged.filter((line) => line.includes('(POST /register) 429'))).toEqual(
      Array.from({ length: 3 }, () => expect.stringMatching(/ route throttling$/)),
    );
    expect(logged.filter((line) => line.includes('(GET /devices) 429'))).toEqual([
      expect.stringMatching(/ stage throttling$/),
    ]);
  });

  it('refuses route settings for a route key the API does not have, as AWS refuses such a stage', () => {
    const printed = {
      functions: {
        register: { name: 'register', events: [{ httpApi: { method: 'POST', path: '/register' } }] },
      },
      resources: {
        extensions: {
          HttpApiStage: {
            Properties: {
              RouteSettings: { 'POST /registr': { ThrottlingRateLimit: 1, ThrottlingBurstLimit: 1 } },
            },
          },
        },
      },
    } satisfies PrintedService;

    expect(() => apiConfigOf(printed)).toThrow(/"POST \/registr", which is no route/);
  });

  it('throttles beyond the stage burst with 429 {"message":"Too Many Requests"} (token bucket)', async () => {
    // serverless.yml declares 100/s with a burst of 200 (first test); a small bucket shows the same rule.
    const base = await open({
      api: { ...api, throttle: { rateLimit: 1, burstLimit: 5 }, routeThrottles: {} },
    });

    const answers = await Promise.all(Array.from({ length: 10 }, () => register(base)));

    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(5);
    const throttled = answers.filter((answer) => answer.status === 429);
    expect(throttled).toHaveLength(5);
    expect(throttled[0]?.text).toBe('{"message":"Too Many Requests"}');
    expect(invoked).toHaveLength(5);
  });

  describe('SigV4 on the AWS_IAM (admin) routes', () => {
    it('refuses an unsigned request with 403 {"message":"Forbidden"}', async () => {
      const base = await open();

      const answer = await call(`${base}/devices/SN-1`);

      expect([answer.status, answer.text]).toEqual([403, '{"message":"Forbidden"}']);
      expect(invoked).toEqual([]);
    });

    it('refuses a wrong secret with 403 and the signature-mismatch message', async () => {
      const base = await open();

      const answer = await signed(base, 'GET', '/devices/SN-1', {
        credentials: { ...admin, secretAccessKey: 'guessed' },
      });

      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.text)).toEqual({ message: SIGV4_MESSAGES.mismatch });
    });

    it('refuses an access key it does not know with 403 "The security token included in the request is invalid."', async () => {
      const base = await open();

      const answer = await signed(base, 'GET', '/devices/SN-1', {
        credentials: { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' },
      });

      expect([answer.status, JSON.parse(answer.text).message]).toEqual([403, SIGV4_MESSAGES.unknownKey]);
    });

    it('refuses a signature more than 5 minutes old', async () => {
      const base = await open();

      const answer = await signed(base, 'GET', '/devices/SN-1', {
        signingDate: new Date(Date.now() - 10 * 60 * 1000),
      });

      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.text).message).toMatch(/^Signature expired: \d{8}T\d{6}Z is now earlier than/);
    });

    it('passes a correctly signed request, with a query and a body, and the caller in the event', async () => {
      const base = await open();

      const get = await signed(base, 'GET', '/devices?batchId=B%201&status=ACTIVE');
      const post = await signed(base, 'POST', '/claims', { body: '{"batchId":"B1","count":2}' });

      expect([get.status, post.status]).toEqual([201, 201]);
      expect(JSON.parse(post.text)).toMatchObject({
        routeKey: 'POST /claims',
        requestContext: { authorizer: { iam: { accessKey: admin.accessKeyId, accountId: '000000000000' } } },
      });
    });
  });
});
