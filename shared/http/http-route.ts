import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { InvalidJsonError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.js';
import { createLogger, describeError, type Logger } from '../logger.js';
import { problemResponse } from './problem.js';

/** An HTTP API (payload v2) event whose body the chain has already checked and parsed. */
export interface JsonEvent extends APIGatewayProxyEventV2 {
  json: unknown;
}

export interface JsonReply {
  status: number;
  body: unknown;
}

export interface RouteOptions {
  maxBodyBytes: number;
  logger?: Logger;
  /** 'none' for GET routes: the body is not read and `json` is undefined. */
  body?: 'json' | 'none';
}

export type JsonRoute = (event: JsonEvent, logger: Logger, context: Context) => Promise<JsonReply>;

type Result = APIGatewayProxyStructuredResultV2;

/**
 * The one middleware chain for JSON routes: enforce the body limit and content type, parse the
 * JSON, run the route, and render any error as problem+json (the error handler is last).
 */
export function jsonRoute(options: RouteOptions, route: JsonRoute) {
  const logger = options.logger ?? createLogger();
  const chain = middy<JsonEvent, Result, Error, Context>();
  if (options.body !== 'none') chain.use(jsonBody(options.maxBodyBytes));
  return chain.use(problemErrors(logger)).handler(async (event, context) => {
    const reply = await route(event, logger.child({ requestId: requestIdOf(event, context) }), context);
    return {
      statusCode: reply.status,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(reply.body),
    };
  });
}

function jsonBody(maxBodyBytes: number): MiddlewareObj<JsonEvent, Result, Error, Context> {
  return {
    name: 'jsonBody',
    before: (request) => {
      const { event } = request;
      const contentType = headerOf(event, 'content-type') ?? '';
      if (!/^application\/(.+\+)?json(\s*;.*)?$/i.test(contentType.trim())) {
        throw new UnsupportedMediaTypeError('send the body as application/json');
      }
      const raw = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
      if (raw.length > maxBodyBytes) {
        throw new PayloadTooLargeError(`the body is ${raw.length} bytes; the limit is ${maxBodyBytes}`);
      }
      try {
        event.json = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new InvalidJsonError('the body could not be parsed as JSON');
      }
    },
  };
}

function problemErrors(logger: Logger): MiddlewareObj<JsonEvent, Result, Error, Context> {
  return {
    name: 'problemErrors',
    onError: (request) => {
      const requestId = requestIdOf(request.event, request.context);
      const response = problemResponse(request.error, requestId);
      const fields = { requestId, status: response.statusCode, error: describe(request.error) };
      if ((response.statusCode ?? 500) >= 500) logger.error('request failed', fields);
      else logger.info('request rejected', fields);
      request.response = response;
    },
  };
}

function describe(error: unknown): unknown {
  return error instanceof Error ? describeError(error) : 'non-error thrown';
}

function headerOf(event: APIGatewayProxyEventV2, name: string): string | undefined {
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === name) return value;
  }
  return undefined;
}

function requestIdOf(event: APIGatewayProxyEventV2, context: Context | undefined): string {
  return event.requestContext?.requestId ?? context?.awsRequestId ?? 'unknown';
}
