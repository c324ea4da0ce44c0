/**
 * A device's proof of possession: how a device that already holds a certificate says "I am SN-1, I
 * hold this certificate's private key, and I ask for this, now". The reference for firmware authors;
 * docs/lifecycle.md shows a worked example.
 *
 * It is a JWS in compact serialization (RFC 7515): `base64url(header).base64url(payload).base64url(sig)`,
 * signed with the private key of the certificate it names.
 *
 * Protected header:
 *   alg       the signature algorithm, from the key: ES256 for an EC P-256 key, ES384 for P-384, ES512
 *             for P-521, RS256 for RSA. ECDSA signatures are the raw r||s form JWS uses (not DER).
 *   typ       always "fleet-device-proof", so that no other JWS the device signs can pass for one.
 *   x5t#S256  which certificate signs: base64url of the SHA-256 of its DER. That is the AWS IoT
 *             certificateId (hex SHA-256 of the DER) in another encoding:
 *             Buffer.from(certificateId, 'hex').toString('base64url').
 *
 * Payload (JSON, UTF-8):
 *   action        what is asked, and it must match the route: "check" (GET /rotation), "rotate"
 *                 (POST /rotation), "confirm" (POST /rotation/confirm).
 *   serialNumber  the device's serial number, as it registered.
 *   iat           now, in seconds since the epoch: the API accepts 300 s either way, so the device's
 *                 clock must be roughly right (set it from NTP, or from the HTTP Date of an answer).
 *   nonce         16 random bytes, base64url (22 characters): fresh for every request. The API refuses a
 *                 rotate or confirm whose nonce it has seen, so sign a new proof for every request,
 *                 retries included; never resend an old one.
 *   csr           only for "rotate": the PEM CSR of the NEW key. The proof is signed with the CURRENT
 *                 key; the CSR with the new one.
 *
 * Which key signs: "check" and "rotate" with the current key (the current certificate); "confirm" with
 * the NEW key, naming the NEW certificate: that proves the new key works before the old is retired.
 */
import { createHash, type KeyObject, randomBytes, X509Certificate } from 'node:crypto';
import { CompactSign } from 'jose';

export type ProofAction = 'check' | 'rotate' | 'confirm';

export const PROOF_TYPE = 'fleet-device-proof';

export interface ProofInput {
  action: ProofAction;
  serialNumber: string;
  /** The PEM certificate whose key signs. */
  certificatePem: string;
  /** That certificate's private key. */
  privateKey: KeyObject;
  /** For "rotate": the PEM CSR of the new key. */
  csr?: string;
  /** For tests: the clock. */
  now?: Date;
}

export interface ProofPayload {
  action: ProofAction;
  serialNumber: string;
  iat: number;
  nonce: string;
  csr?: string;
}

/** Signs a fresh proof: a new nonce and the current time on every call. */
export async function deviceProof(input: ProofInput): Promise<string> {
  const payload: ProofPayload = {
    action: input.action,
    serialNumber: input.serialNumber,
    iat: Math.floor((input.now ?? new Date()).getTime() / 1000),
    nonce: randomBytes(16).toString('base64url'),
    ...(input.csr !== undefined ? { csr: input.csr } : {}),
  };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({
      alg: algorithmFor(input.privateKey),
      typ: PROOF_TYPE,
      'x5t#S256': certificateThumbprint(input.certificatePem),
    })
    .sign(input.privateKey);
}

/** `x5t#S256`: base64url(SHA-256(DER)), the certificateId AWS IoT gives in base64url instead of hex. */
export function certificateThumbprint(certificatePem: string): string {
  return createHash('sha256').update(new X509Certificate(certificatePem).raw).digest('base64url');
}

/** The hex certificateId AWS IoT gives a certificate: SHA-256 of its DER. */
export function certificateId(certificatePem: string): string {
  return createHash('sha256').update(new X509Certificate(certificatePem).raw).digest('hex');
}

const EC_ALGORITHMS: Record<string, string> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
};

/** The JWS algorithm for a device key; a key AWS IoT would not certify has none. */
export function algorithmFor(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const algorithm = key.asymmetricKeyType === 'ec' && curve ? EC_ALGORITHMS[curve] : undefined;
  if (!algorithm) throw new Error(`no proof algorithm for a ${key.asymmetricKeyType} ${curve ?? ''} key`);
  return algorithm;
}
