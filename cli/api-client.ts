import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface ApiTarget {
  url: string;
  /** Sign with SigV4 (service execute-api). */
  sign: boolean;
  region: string;
  /** The sandbox's admin credentials (.sandbox/sandbox.json); the standard AWS chain when absent. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Calls the admin API; any failure becomes a one-line CliError. */
export async function call<T>(
  target: ApiTarget,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<T> {
  const url = new URL(path, target.url.endsWith('/') ? target.url : `${target.url}/`);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  let headers: Record<string, string> = {
    host: url.host,
    ...(payload ? { 'content-type': 'application/json' } : {}),
  };
  if (target.sign) headers = await sign(target, method, url, headers, payload);
  let response: Response;
  try {
    response = await fetch(url, { method, headers, ...(payload ? { body: payload } : {}) });
  } catch (error) {
    const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new CliError(
      `cannot reach ${target.url} (${reason}); is the sandbox running (npm start), or is --api-url right?`,
    );
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const problem = (parsed ?? {}) as { code?: string; detail?: string; title?: string; message?: string };
    const what = [problem.code, problem.detail ?? problem.title ?? problem.message]
      .filter(Boolean)
      .join(': ');
    throw new CliError(`${method} ${url.pathname} failed with ${response.status}${what ? ` ${what}` : ''}`);
  }
  return parsed as T;
}

async function sign(
  target: ApiTarget,
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: string | undefined,
) {
  let credentials: Awaited<ReturnType<ReturnType<typeof defaultProvider>>>;
  try {
    credentials = target.credentials ?? (await defaultProvider()());
  } catch {
    throw new CliError(
      'no AWS credentials found for signing (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)',
    );
  }
  const signer = new SignatureV4({
    service: 'execute-api',
    region: target.region,
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
