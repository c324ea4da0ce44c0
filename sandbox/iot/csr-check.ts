import { x509 } from '../pki/x509.js';
import { IotError } from './iot-error.js';

const CURVES = new Set(['P-256', 'P-384', 'P-521']);
const HASHES = new Set(['SHA-256', 'SHA-384', 'SHA-512']);
const RSA_KEYS = new Set(['RSASSA-PKCS1-v1_5', 'RSA-PSS']);
const SIGNATURES: Record<string, 'RSA' | 'EC'> = {
  'RSASSA-PKCS1-v1_5': 'RSA',
  'RSA-PSS': 'RSA',
  ECDSA: 'EC',
};
const MIN_RSA_BITS = 2048;
const PEM_LABELS = new Set(['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);

/**
 * What AWS IoT's CreateCertificateFromCsr takes, checked with @peculiar/x509 and deliberately not
 * with the product's own parser (shared/csr), so that the sandbox can disagree with the product:
 * - "a public key that is either an RSA key with a length of at least 2048 bits or an ECC key from
 *   NIST P-256, NIST P-384, or NIST P-521 curves" (the API reference), the curve named by its OID;
 * - a signature AWS IoT lists among its certificate-signing algorithms: SHA-256/384/512 with RSA
 *   (PKCS #1 v1.5 or RSASSA-PSS) or with ECDSA; not SHA-1, not Ed25519;
 * - proof of possession: the signature verifies with the request's own public key.
 *
 * Returns the request's public key once the request passes; throws InvalidRequestException otherwise.
 */
export async function checkCsr(pem: string): Promise<x509.PublicKey> {
  const request = parse(pem);
  const family = keyFamily(request.publicKey);
  // WebCrypto's names, as @peculiar/x509 maps the request's signature AlgorithmIdentifier.
  const { name, hash } = request.signatureAlgorithm as { name: string; hash?: string | { name: string } };
  const hashName = typeof hash === 'string' ? hash : hash?.name;
  if (SIGNATURES[name] !== family || !hashName || !HASHES.has(hashName.toUpperCase())) {
    refuse(
      `signature algorithm ${name}${hashName ? ` with ${hashName}` : ''} is not supported for a ${family} key`,
    );
  }
  let verified = false;
  try {
    verified = await request.verify();
  } catch {
    verified = false;
  }
  if (!verified) refuse('the signature does not verify with the public key of the request');
  return request.publicKey;
}

function parse(pem: string): x509.Pkcs10CertificateRequest {
  let blocks: x509.PemStruct[];
  try {
    blocks = x509.PemConverter.decodeWithHeaders(pem);
  } catch {
    refuse('not PEM');
  }
  const [block, ...rest] = blocks;
  if (!block || rest.length > 0 || !PEM_LABELS.has(block.type)) {
    refuse('expected one PEM block labelled CERTIFICATE REQUEST');
  }
  try {
    return new x509.Pkcs10CertificateRequest(block.rawData);
  } catch (error) {
    refuse(`not a PKCS #10 request (${(error as Error).message})`);
  }
}

function keyFamily(publicKey: x509.PublicKey): 'RSA' | 'EC' {
  const algorithm = publicKey.algorithm as { name: string; modulusLength?: number; namedCurve?: string };
  if (RSA_KEYS.has(algorithm.name)) {
    const bits = algorithm.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) refuse(`the RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
    return 'RSA';
  }
  if (algorithm.name === 'ECDSA') {
    if (!algorithm.namedCurve || !CURVES.has(algorithm.namedCurve))
      refuse(`EC curve ${algorithm.namedCurve ?? 'unknown'} is not NIST P-256, P-384 or P-521`);
    return 'EC';
  }
  // An EC key with explicit curve parameters or an unknown curve has no WebCrypto name: the OID.
  refuse(`the public key (${algorithm.name}) is neither RSA nor EC on a named NIST curve`);
}

function refuse(reason: string): never {
  throw new IotError('InvalidRequestException', `Invalid certificate signing request: ${reason}`);
}
