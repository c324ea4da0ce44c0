import { createHash, type KeyObject, randomBytes, X509Certificate } from 'node:crypto';
import { CompactSign } from 'jose';
import type { ProofAction } from '../../shared/lifecycle/device-proof.js';

/** A device's proof as firmware makes it (docs/lifecycle.md): tests vary one field at a time. */
export async function proof(
  key: KeyObject,
  certificatePem: string,
  payload: { action: ProofAction; serialNumber: string; csr?: string; iat?: number; nonce?: string },
  header: { alg?: string; typ?: string } = {},
): Promise<string> {
  const thumbprint = createHash('sha256').update(new X509Certificate(certificatePem).raw).digest('base64url');
  const body = {
    iat: Math.floor(Date.now() / 1000),
    nonce: randomBytes(16).toString('base64url'),
    ...payload,
  };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(body)))
    .setProtectedHeader({
      alg: header.alg ?? 'ES256',
      typ: header.typ ?? 'fleet-device-proof',
      'x5t#S256': thumbprint,
    })
    .sign(key);
}
