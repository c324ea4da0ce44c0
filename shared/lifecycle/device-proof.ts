import { createHash, X509Certificate } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import * as z from 'zod/mini';
import { DeviceProofExpiredError, DeviceProofInvalidError, InvalidRequestError } from '../errors.js';
import { NONCE_KEY_PREFIX } from '../inventory/model.js';
import { SERIAL_NUMBER_PATTERN } from '../registration/request.js';

/**
 * A device proves who it is after first boot with the key of a certificate this backend issued: a
 * compact JWS (RFC 7515) over a small JSON payload, whose protected header names the certificate by
 * its SHA-256 thumbprint (`x5t#S256`, RFC 7515 §4.1.8), which is also its AWS IoT certificateId.
 * The signature proves possession of the key; `action` binds the proof to one route, `iat` to a
 * short window, and `nonce` (spent by the routes that change something) to one request, so a
 * captured proof cannot be replayed. docs/lifecycle.md shows one, field by field.
 */
export const PROOF_TYPE = 'fleet-device-proof';
/** How far a proof's `iat` may be from the server's clock, either way. */
export const PROOF_WINDOW_SECONDS = 300;
/** The signature algorithms a device key can make (EC P-256/384/521, RSA); `none` and HMAC never. */
export const PROOF_ALGORITHMS = [
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
];
/** A proof is a few hundred bytes, or about 2 KB with a CSR in it. */
const MAX_PROOF_LENGTH = 12_000;

export type ProofAction = 'rotate' | 'confirm' | 'check';

const payloadSchema = z.object({
  action: z.enum(['rotate', 'confirm', 'check']),
  serialNumber: z.string().check(z.minLength(1), z.maxLength(128), z.regex(SERIAL_NUMBER_PATTERN)),
  iat: z.int(),
  nonce: z.string().check(z.regex(/^[A-Za-z0-9_-]{16,64}$/)),
  csr: z.optional(z.string().check(z.maxLength(8_192))),
});
export type ProofClaims = z.infer<typeof payloadSchema>;

/** What a proof says it is, before anything is verified: which device, and which of its certificates. */
export interface ProofClaimsUnverified {
  serialNumber: string;
  certificateId: string;
}

const headerOf = (jws: string) => {
  try {
    return decodeProtectedHeader(jws);
  } catch {
    throw new InvalidRequestError('the proof is not a compact JWS');
  }
};

/** Reads whom a proof names, so that the right certificate can be fetched to verify it. */
export function readProof(jws: unknown): ProofClaimsUnverified {
  if (typeof jws !== 'string' || jws.length > MAX_PROOF_LENGTH || jws.split('.').length !== 3) {
    throw new InvalidRequestError('the proof must be a compact JWS (three base64url parts)');
  }
  const header = headerOf(jws);
  const thumbprint = header['x5t#S256'];
  if (typeof thumbprint !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(thumbprint)) {
    throw new InvalidRequestError('the proof header must name the certificate in x5t#S256');
  }
  if (header.typ !== PROOF_TYPE)
    throw new InvalidRequestError(`the proof header's typ must be ${PROOF_TYPE}`);
  const claims = parsePayload(jws.split('.')[1] as string);
  return {
    serialNumber: claims.serialNumber,
    certificateId: Buffer.from(thumbprint, 'base64url').toString('hex'),
  };
}

/**
 * Verifies a proof against the certificate it names (which the caller found on the device's record):
 * the signature with that certificate's key, the route's action, the device, and the time window.
 * Every identity failure is the same DEVICE_PROOF_INVALID, so that a caller learns nothing about
 * which serial numbers or certificates exist.
 */
export async function verifyProof(
  jws: string,
  certificatePem: string,
  expected: { action: ProofAction; serialNumber: string },
  now: Date,
): Promise<ProofClaims> {
  let payload: Uint8Array;
  try {
    const key = new X509Certificate(certificatePem).publicKey;
    const verified = await compactVerify(jws, key, { algorithms: PROOF_ALGORITHMS });
    if (verified.protectedHeader.typ !== PROOF_TYPE) throw invalid();
    payload = verified.payload;
  } catch {
    throw invalid();
  }
  const claims = parsePayload(Buffer.from(payload).toString('base64url'));
  if (claims.serialNumber !== expected.serialNumber) throw invalid();
  if (claims.action !== expected.action) {
    throw new InvalidRequestError(
      `this route takes a proof for "${expected.action}", not "${claims.action}"`,
    );
  }
  if (Math.abs(now.getTime() / 1000 - claims.iat) > PROOF_WINDOW_SECONDS) {
    throw new DeviceProofExpiredError(
      `the proof's iat must be within ${PROOF_WINDOW_SECONDS} s of the server's time (${Math.floor(now.getTime() / 1000)}); sign a new one`,
    );
  }
  return claims;
}

/** The key under which a proof's nonce is spent: one nonce, one use, per certificate. */
export function nonceKey(certificateId: string, nonce: string): string {
  return `${NONCE_KEY_PREFIX}${createHash('sha256').update(`${certificateId}:${nonce}`).digest('hex')}`;
}

export function invalid(): DeviceProofInvalidError {
  return new DeviceProofInvalidError('the proof does not verify against a certificate of this device');
}

function parsePayload(part: string): ProofClaims {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidRequestError('the proof payload is not JSON');
  }
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success) {
    throw new InvalidRequestError('the proof payload does not match the schema', {
      extensions: {
        errors: parsed.error.issues.map((issue) => ({
          pointer: `/proof/payload/${issue.path.join('/')}`,
          detail: issue.message,
        })),
      },
    });
  }
  return parsed.data;
}
