import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type * as z from 'zod/mini';
import { type Problem, problemSchema } from '../shared/admin/response-schemas.js';
import type { ApiTarget } from './discovery.js';
import { CliError } from './errors.js';

/** Longer than HTTP API's 30 s integration timeout: the API answers (503) before we give up. */
const REQUEST_TIMEOUT_MS = 40_000;
const PREVIEW_LENGTH = 120;

/** Turns a JSON pointer of the request into words for the user (a CLI option, a line of a file). */
export type PointerText = (pointer: string) => string;

/** The request never got an answer: nothing is known about whether it took effect. */
export class ApiUnreachableError extends CliError {}

/** An answer that is not what the route returns (a dying handler's body, a proxy's page). */
export class UnexpectedAnswerError extends CliError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The API refused the request with an error status (problem+json when it is the API answering). */
export class ApiRefusedError extends CliError {
  constructor(
    message: string,
    readonly status: number,
    readonly problem: Problem | undefined,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message);
  }

  get code(): string | undefined {
    return this.problem?.code;
  }
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** How to name the request members the API's `errors[]` point at. */
  pointerText?: PointerText;
}

/** The admin API over HTTP: every request signed (SigV4), every answer checked against its route's schema. */
export class ApiClient {
  constructor(readonly target: ApiTarget) {}

  async call<T>(
    method: 'GET' | 'POST',
    path: string,
    schema: z.ZodMiniType<T>,
    options: CallOptions = {},
  ): Promise<T> {
    const base = this.target.url.endsWith('/') ? this.target.url : `${this.target.url}/`;
    const url = new URL(path, base);
    const what = `${method} ${url.pathname}`;
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers = await this.sign(
      method,
      url,
      {
        host: url.host,
        ...(payload ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      payload,
    );
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(payload ? { body: payload } : {}),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await response.text();
    } catch (error) {
      throw new ApiUnreachableError(this.unreachable(what, error));
    }
    const contentType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const json = parseJson(text);
    if (!response.ok) {
      const problem = problemSchema.safeParse(json);
      throw new ApiRefusedError(
        refusal(what, response.status, json, problem.success ? problem.data : undefined, options.pointerText),
        response.status,
        problem.success ? problem.data : undefined,
        retryAfter(response.headers.get('retry-after')),
      );
    }
    const parsed = schema.safeParse(json);
    if (parsed.success) return parsed.data;
    throw new UnexpectedAnswerError(
      `${what} answered ${response.status} with a body that is not what this route returns ` +
        `(${contentType || 'no content type'}: ${preview(text)}); is ${this.target.url} the fleet admin API?`,
      response.status,
    );
  }

  private unreachable(what: string, error: unknown): string {
    const name = (error as Error).name;
    if (name === 'TimeoutError')
      return `no answer from ${this.target.url} to ${what} within ${REQUEST_TIMEOUT_MS / 1000} s`;
    const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    const hint = this.target.credentials
      ? `is the sandbox running (npm start)? (API from ${this.target.source})`
      : `is ${this.target.source} right?`;
    return `cannot reach ${this.target.url} (${reason}) for ${what}; ${hint}`;
  }

  private async sign(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
  ): Promise<Record<string, string>> {
    let credentials: Awaited<ReturnType<ReturnType<typeof defaultProvider>>>;
    try {
      credentials = this.target.credentials ?? (await defaultProvider()());
    } catch {
      throw new CliError(
        'no AWS credentials found for signing (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)',
      );
    }
    const signer = new SignatureV4({
      service: 'execute-api',
      region: this.target.region,
      credentials,
      sha256: Hash.bind(null, 'sha256'),
    });
    const signed = await signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      ...(body ? { body } : {}),
    });
    return signed.headers as Record<string, string>;
  }
}

/**
 * `<what> failed with <status> <code>: <detail>`, then one indented line per `errors[]` entry: where
 * in the request (the pointer, in the caller's words) and what is wrong there.
 */
function refusal(
  what: string,
  status: number,
  json: unknown,
  problem: Problem | undefined,
  pointerText: PointerText = defaultPointerText,
): string {
  const message = problem
    ? [problem.code, problem.detail ?? problem.title].filter(Boolean).join(': ')
    : typeof (json as { message?: unknown })?.message === 'string'
      ? (json as { message: string }).message
      : '';
  const details = (problem?.errors ?? []).map(
    (error) => `\n  ${pointerText(error.pointer)}: ${error.detail}`,
  );
  return `${what} failed with ${status}${message ? ` ${message}` : ''}${details.join('')}`;
}

function defaultPointerText(pointer: string): string {
  return pointer === '/' || pointer === '' ? 'the request' : pointer.replace(/^\//, '');
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

function preview(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (!flat) return 'an empty body';
  return flat.length > PREVIEW_LENGTH ? `${flat.slice(0, PREVIEW_LENGTH)}…` : flat;
}

function retryAfter(value: string | null): number | undefined {
  const seconds = Number(value);
  return value && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
