import type { IncomingHttpHeaders } from 'node:http';
import type { APIGatewayEventRequestContextV2 } from 'aws-lambda';

export interface IncomingCall {
  method: string;
  rawPath: string;
  rawQueryString: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  sourceIp: string;
}

export interface EventContext {
  requestId: string;
  routeKey: string;
  pathParameters: Record<string, string>;
  accountId: string;
  apiId: string;
  /** The caller SigV4 identified, on AWS_IAM routes. */
  iam?: { accessKey: string; accountId: string; userArn: string; userId: string };
  now?: Date;
}

/**
 * The event HTTP API sends a Lambda proxy integration, payload format 2.0 (AWS: "Create AWS Lambda
 * proxy integrations for HTTP APIs"): duplicate headers and query parameters joined with commas,
 * cookies in their own field, a binary body base64-encoded.
 */
export function payloadV2Event(call: IncomingCall, context: EventContext) {
  const now = context.now ?? new Date();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(call.headers)) {
    if (value === undefined || name === 'cookie') continue;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query = new URLSearchParams(call.rawQueryString);
  const queryStringParameters: Record<string, string> = {};
  for (const name of new Set(query.keys())) queryStringParameters[name] = query.getAll(name).join(',');
  const cookies = call.headers.cookie?.split(/;\s*/).filter(Boolean);
  const text = isTextual(call.headers['content-type']);
  const domainName = call.headers.host ?? 'localhost';
  const requestContext = {
    accountId: context.accountId,
    apiId: context.apiId,
    domainName,
    domainPrefix: domainName.split('.')[0] ?? domainName,
    http: {
      method: call.method,
      path: call.rawPath,
      protocol: 'HTTP/1.1',
      sourceIp: call.sourceIp,
      userAgent: headers['user-agent'] ?? '',
    },
    requestId: context.requestId,
    routeKey: context.routeKey,
    stage: '$default',
    time: clfTime(now),
    timeEpoch: now.getTime(),
  } satisfies APIGatewayEventRequestContextV2;
  return {
    version: '2.0',
    routeKey: context.routeKey,
    rawPath: call.rawPath,
    rawQueryString: call.rawQueryString,
    ...(cookies?.length ? { cookies } : {}),
    headers,
    ...(query.size > 0 ? { queryStringParameters } : {}),
    // Only AWS_IAM routes carry an authorizer, with the identity SigV4 established.
    requestContext: context.iam
      ? {
          ...requestContext,
          authorizer: {
            iam: {
              accessKey: context.iam.accessKey,
              accountId: context.iam.accountId,
              callerId: context.iam.userId,
              cognitoIdentity: null,
              principalOrgId: null,
              userArn: context.iam.userArn,
              userId: context.iam.userId,
            },
          },
        }
      : requestContext,
    ...(Object.keys(context.pathParameters).length > 0 ? { pathParameters: context.pathParameters } : {}),
    ...(call.body.length > 0 ? { body: call.body.toString(text ? 'utf8' : 'base64') } : {}),
    isBase64Encoded: call.body.length > 0 && !text,
  };
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * How HTTP API turns a function's result into the HTTP response (payload format 2.0): a result with
 * a statusCode is a response; any other JSON is a 200 application/json with that JSON as the body.
 * A response it cannot use (a statusCode that is no status, a body that is no string) is undefined:
 * the caller answers 500 as HTTP API does.
 */
export function answerOf(payload: string): HttpAnswer | undefined {
  let result: unknown;
  try {
    result = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!isObject(result) || !('statusCode' in result)) {
    return { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(payload) };
  }
  const status = Number(result.statusCode);
  if (!Number.isInteger(status) || status < 100 || status > 599) return undefined;
  if (result.body !== undefined && result.body !== null && typeof result.body !== 'string') return undefined;
  const headers: Record<string, string | string[]> = {};
  if (isObject(result.headers)) {
    for (const [name, value] of Object.entries(result.headers)) headers[name.toLowerCase()] = String(value);
  }
  if (Array.isArray(result.cookies) && result.cookies.length > 0) {
    headers['set-cookie'] = result.cookies.map(String);
  }
  const body = typeof result.body === 'string' ? result.body : '';
  return {
    status,
    headers,
    body: Buffer.from(body, result.isBase64Encoded === true ? 'base64' : 'utf8'),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Content types passed to the function as text; everything else is base64-encoded. */
function isTextual(contentType: string | undefined): boolean {
  if (!contentType) return true;
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return (
    type.startsWith('text/') ||
    /^application\/(json|xml|javascript|x-www-form-urlencoded|problem\+json)$/.test(type) ||
    type.endsWith('+json') ||
    type.endsWith('+xml')
  );
}

/** "12/Mar/2020:19:03:58 +0000", the CLF time HTTP API puts in requestContext.time. */
function clfTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(
    date.getUTCHours(),
  )}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}
