import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface SignedCall {
  method: string;
  /** The path as sent, still percent-encoded. */
  rawPath: string;
  rawQueryString: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type Verdict = { ok: true; accessKeyId: string } | { ok: false; message: string; errorType?: string };

/** API Gateway's messages for requests to an AWS_IAM route it refuses (see docs/sandbox.md). */
export const SIGV4_MESSAGES = {
  unsigned: 'Forbidden',
  unknownKey: 'The security token included in the request is invalid.',
  mismatch:
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret ' +
    'Access Key and signing method. Consult the service documentation for details.',
} as const;

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/;
const MAX_SKEW_MS = 5 * 60 * 1000;

/**
 * Verifies a SigV4 signature (header form, service execute-api) the way API Gateway does for an
 * AWS_IAM route: it recomputes the signature over the headers the client signed, with the secret of
 * the access key the client named, and compares.
 */
export async function verifySigV4(
  call: SignedCall,
  options: { region: string; credentials: SigningCredentials[]; now?: Date },
): Promise<Verdict> {
  const authorization = call.headers.authorization;
  if (!authorization) return { ok: false, message: SIGV4_MESSAGES.unsigned };
  const parts = AUTHORIZATION.exec(authorization.trim());
  if (!parts)
    return { ok: false, message: SIGV4_MESSAGES.unsigned, errorType: 'IncompleteSignatureException' };
  const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] =
    parts as unknown as string[];
  const credentials = options.credentials.find((candidate) => candidate.accessKeyId === accessKeyId);
  if (!credentials) {
    return { ok: false, message: SIGV4_MESSAGES.unknownKey, errorType: 'UnrecognizedClientException' };
  }
  const amzDate = header(call.headers, 'x-amz-date');
  const signingDate = amzDate ? parseAmzDate(amzDate) : undefined;
  const mismatch: Verdict = {
    ok: false,
    message: SIGV4_MESSAGES.mismatch,
    errorType: 'InvalidSignatureException',
  };
  if (!signingDate || amzDate?.slice(0, 8) !== scopeDate) return mismatch;
  if (region !== options.region || service !== 'execute-api') return mismatch;
  const now = options.now ?? new Date();
  if (Math.abs(now.getTime() - signingDate.getTime()) > MAX_SKEW_MS) {
    const stamp = (date: Date) => date.toISOString().replace(/[-:]|\.\d{3}/g, '');
    return {
      ok: false,
      errorType: 'InvalidSignatureException',
      message: `Signature expired: ${amzDate} is now earlier than ${stamp(
        new Date(now.getTime() - MAX_SKEW_MS),
      )} (${stamp(now)} - 5 min.)`,
    };
  }
  const claimedHash = header(call.headers, 'x-amz-content-sha256');
  if (claimedHash && claimedHash !== 'UNSIGNED-PAYLOAD' && claimedHash !== sha256Hex(call.body))
    return mismatch;

  const signedHeaders = new Set((signedHeaderList as string).split(';'));
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = header(call.headers, name);
    if (value === undefined) return mismatch;
    headers[name] = value;
  }
  const url = new URL(`http://localhost${call.rawPath}?${call.rawQueryString}`);
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of url.searchParams) {
    const existing = query[name];
    query[name] =
      existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  const signer = new SignatureV4({
    service: 'execute-api',
    region: options.region,
    credentials,
    sha256: Hash.bind(null, 'sha256'),
    // Verify exactly what the client signed: no x-amz-content-sha256 of our own.
    applyChecksum: false,
  });
  const expected = await signer.sign(
    {
      method: call.method,
      protocol: 'http:',
      hostname: 'localhost',
      path: call.rawPath,
      query,
      headers,
      ...(call.body.length > 0 ? { body: call.body } : {}),
    },
    { signingDate, signableHeaders: signedHeaders },
  );
  const computed = /Signature=([0-9a-f]{64})/.exec(String(expected.headers.authorization))?.[1] ?? '';
  const same =
    computed.length === (signature as string).length &&
    timingSafeEqual(Buffer.from(computed), Buffer.from(signature as string));
  return same ? { ok: true, accessKeyId: accessKeyId as string } : mismatch;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function parseAmzDate(value: string): Date | undefined {
  const parts = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!parts) return undefined;
  const [, year, month, day, hour, minute, second] = parts.map(Number) as number[];
  return new Date(Date.UTC(year as number, (month as number) - 1, day, hour, minute, second));
}

function sha256Hex(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}
