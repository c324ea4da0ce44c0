import { type KeyObject, randomBytes } from 'node:crypto';
import { CompactSign } from 'jose';
import { certificateThumbprint, PROOF_TYPE, type ProofAction } from '../../sandbox/device-proof.js';

/**
 * A device's proof with any field set as a test needs it (an old iat, another action, a chosen
 * nonce, another typ); sandbox/device-proof.ts makes the firmware's, always fresh.
 */
export async function proof(
  key: KeyObject,
  certificatePem: string,
  payload: { action: ProofAction; serialNumber: string; csr?: string; iat?: number; nonce?: string },
  header: { alg?: string; typ?: string } = {},
): Promise<string> {
  const body = {
    iat: Math.floor(Date.now() / 1000),
    nonce: randomBytes(16).toString('base64url'),
    ...payload,
  };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(body)))
    .setProtectedHeader({
      alg: header.alg ?? 'ES256',
      typ: header.typ ?? PROOF_TYPE,
      'x5t#S256': certificateThumbprint(certificatePem),
    })
    .sign(key);
}
