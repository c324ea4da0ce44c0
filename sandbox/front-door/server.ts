import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listen } from '../net.js';
import { type ApiConfig, findRoute } from './api-config.js';
import { ConcurrencyLimit, TokenBucket } from './limits.js';
import { answerOf, type HttpAnswer, payloadV2Event } from './payload.js';
import { type SigningCredentials, verifySigV4 } from './sigv4.js';

export interface FrontDoorOptions {
  api: ApiConfig;
  /** serverless-offline's Lambda Invoke API, e.g. http://127.0.0.1:3002. */
  lambdaEndpoint: string;
  region: string;
  accountId: string;
  /** The credentials SigV4 is checked against on AWS_IAM routes. */
  credentials: SigningCredentials[];
  /** HTTP API's integration timeout: 30 s, its maximum. */
  integrationTimeoutMs?: number;
  /** One line per request (request id, route, status, duration); none when absent. */
  log?: (line: string) => void;
}

export interface RunningFrontDoor {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** HTTP API's own answers (AWS references in docs/sandbox.md). */
const ANSWERS = {
  notFound: [404, 'Not Found'],
  tooManyRequests: [429, 'Too Many Requests'],
  internalError: [500, 'Internal Server Error'],
  serviceUnavailable: [503, 'Service Unavailable'],
  tooLarge: [413, 'Request Entity Too Large'],
} as const;
/** HTTP API's payload quota. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;
const SANDBOX_API_ID = 'sandboxapi';

/**
 * The sandbox's API Gateway: an HTTP API in front of serverless-offline's Lambda Invoke API. It
 * matches routes, throttles each with its own token bucket (RouteSettings) or the stage's, verifies
 * SigV4 on AWS_IAM routes, holds each function to its reserved concurrency, builds the payload 2.0
 * event with a request id of its own, and answers function errors and timeouts as HTTP API does,
 * never with a stack.
 */
export async function startFrontDoor(options: FrontDoorOptions, host: string, port: number) {
  const handle = frontDoorHandler(options);
  const server = createServer((request, response) => void handle(request, response));
  const bound = await listen(server, host, port);
  return { server, url: `http://${host}:${bound.port}`, close: bound.close } satisfies RunningFrontDoor;
}

function frontDoorHandler(options: FrontDoorOptions) {
  const throttling = throttlingOf(options.api);
  const concurrency = new Map<string, ConcurrencyLimit>();
  for (const route of options.api.routes) {
    if (route.reservedConcurrency !== undefined && !concurrency.has(route.functionName)) {
      concurrency.set(route.functionName, new ConcurrencyLimit(route.reservedConcurrency));
    }
  }
  const timeoutMs = options.integrationTimeoutMs ?? 30_000;

  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const started = performance.now();
    const requestId = newRequestId();
    const [rawPath = '/', rawQueryString = ''] = (request.url ?? '/').split(/\?(.*)/s);
    const method = request.method ?? 'GET';
    let routeKey = '-';
    const send = (answer: HttpAnswer, note = '') => {
      response.writeHead(answer.status, { ...answer.headers, 'apigw-requestid': requestId });
      response.end(answer.body);
      options.log?.(
        `${requestId} ${method} ${rawPath} (${routeKey}) ${answer.status} ${Math.round(
          performance.now() - started,
        )} ms${note ? ` ${note}` : ''}`,
      );
    };
    try {
      const body = await readBody(request, MAX_BODY_BYTES);
      if (body === undefined) return send(message(ANSWERS.tooLarge));
      const found = findRoute(options.api, method, rawPath);
      if (!found) return send(message(ANSWERS.notFound));
      const { route, pathParameters } = found;
      routeKey = route.routeKey;
      const { bucket, level } = throttling(route.routeKey);
      if (bucket && !bucket.take()) return send(message(ANSWERS.tooManyRequests), `${level} throttling`);

      let iam: Caller | undefined;
      if (route.iam) {
        const verdict = await verifySigV4(
          { method, rawPath, rawQueryString, headers: request.headers, body },
          { region: options.region, credentials: options.credentials },
        );
        if (!verdict.ok) {
          return send(
            refusal(verdict.message, verdict.errorType),
            `SigV4 refused (${verdict.errorType ?? 'unsigned'})`,
          );
        }
        iam = callerOf(verdict.accessKeyId, options.accountId);
      }

      const limit = concurrency.get(route.functionName);
      const release = limit ? limit.tryAcquire() : () => {};
      if (!release) {
        // Lambda refuses the invocation (TooManyRequestsException) and HTTP API answers 500.
        return send(message(ANSWERS.internalError), `reserved concurrency (${limit?.limit}) reached`);
      }
      const event = payloadV2Event(
        { method, rawPath, rawQueryString, headers: request.headers, body, sourceIp: sourceIpOf(request) },
        {
          requestId,
          routeKey: route.routeKey,
          pathParameters,
          accountId: options.accountId,
          apiId: SANDBOX_API_ID,
          ...(iam ? { iam } : {}),
        },
      );
      const outcome = await invoke(options.lambdaEndpoint, route.functionName, event, timeoutMs, release);
      if (outcome.kind === 'timeout') {
        return send(message(ANSWERS.serviceUnavailable), `integration timeout (${timeoutMs} ms)`);
      }
      if (outcome.kind === 'failed') return send(message(ANSWERS.internalError), outcome.reason);
      const answer = answerOf(outcome.payload);
      return answer ? send(answer) : send(message(ANSWERS.internalError), 'malformed Lambda response');
    } catch (error) {
      process.stderr.write(`front door: ${(error as Error).stack ?? String(error)}\n`);
      if (!response.headersSent) send(message(ANSWERS.internalError), 'front door error');
    }
  };
}

/**
 * The token bucket a route's requests take from: its own (RouteSettings) when it has one, else the
 * stage's default (DefaultRouteSettings), which the routes without their own share.
 */
function throttlingOf(api: ApiConfig) {
  const stage = api.throttle ? new TokenBucket(api.throttle.rateLimit, api.throttle.burstLimit) : undefined;
  const routes = new Map(
    Object.entries(api.routeThrottles).map(([routeKey, { rateLimit, burstLimit }]) => [
      routeKey,
      new TokenBucket(rateLimit, burstLimit),
    ]),
  );
  return (routeKey: string): { bucket: TokenBucket | undefined; level: 'route' | 'stage' } => {
    const own = routes.get(routeKey);
    return own ? { bucket: own, level: 'route' } : { bucket: stage, level: 'stage' };
  };
}

type Caller = { accessKey: string; accountId: string; userArn: string; userId: string };

/** The IAM identity the event carries for a verified caller (the sandbox has one admin user). */
function callerOf(accessKeyId: string, accountId: string): Caller {
  return {
    accessKey: accessKeyId,
    accountId,
    userArn: `arn:aws:iam::${accountId}:user/sandbox-admin`,
    userId: accessKeyId,
  };
}

function refusal(text: string, errorType: string | undefined): HttpAnswer {
  const answer = message([403, text]);
  if (errorType) answer.headers['x-amzn-errortype'] = errorType;
  return answer;
}

type Outcome = { kind: 'result'; payload: string } | { kind: 'failed'; reason: string } | { kind: 'timeout' };

/**
 * Invokes the function through the Lambda Invoke API (RequestResponse). Past the integration
 * timeout the caller gets its answer, but the function runs on and holds its concurrency slot until
 * it ends, as in AWS.
 */
async function invoke(
  endpoint: string,
  functionName: string,
  event: unknown,
  timeoutMs: number,
  release: () => void,
): Promise<Outcome> {
  const call = (async (): Promise<Outcome> => {
    try {
      const response = await fetch(
        `${endpoint}/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`,
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) },
      );
      const payload = await response.text();
      const functionError = response.headers.get('x-amz-function-error');
      if (functionError) return { kind: 'failed', reason: `function error: ${errorMessageOf(payload)}` };
      if (response.status !== 200) return { kind: 'failed', reason: `Lambda answered ${response.status}` };
      return { kind: 'result', payload };
    } catch (error) {
      return { kind: 'failed', reason: `Lambda unreachable: ${(error as Error).message}` };
    } finally {
      release();
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs);
  });
  try {
    return await Promise.race([call, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorMessageOf(payload: string): string {
  try {
    return String((JSON.parse(payload) as { errorMessage?: unknown }).errorMessage ?? payload);
  } catch {
    return payload;
  }
}

function message([status, text]: readonly [number, string]): HttpAnswer {
  return {
    status,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ message: text })),
  };
}

/** An id shaped like HTTP API's (apigw-requestid, requestContext.requestId). */
function newRequestId(): string {
  return `${randomBytes(11).toString('base64url')}=`;
}

function sourceIpOf(request: IncomingMessage): string {
  return (request.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    request.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
