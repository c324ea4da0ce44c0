import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import {
  CsrKeyTooWeakError,
  CsrKeyUnsupportedError,
  CsrMalformedError,
  CsrSignatureAlgorithmUnsupportedError,
  CsrSignatureInvalidError,
} from '../errors.js';
import { childrenOf, DerError, type DerNode, decodeOid, expectNode, TAG } from './der.js';

export interface ParsedCsr {
  /** The PEM as received, normalised to LF line endings; this is what AWS IoT is sent. */
  pem: string;
  /** SHA-256 of the DER, hex: identifies "the same CSR" when a device retries. */
  sha256: string;
  /** The request's SubjectPublicKeyInfo, DER. */
  spki: Buffer;
  /** SHA-256 of the SubjectPublicKeyInfo, hex: the key's identity across CSRs and certificates. */
  publicKeySha256: string;
  keyType: 'RSA' | 'EC';
  /** RSA modulus bits, or the EC curve's field size. */
  keyBits: number;
  curve?: string;
}

type KeyFamily = 'RSA' | 'EC';
const SIGNATURE_ALGORITHMS: Record<string, { hash: string; family: KeyFamily }> = {
  '1.2.840.113549.1.1.11': { hash: 'sha256', family: 'RSA' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', family: 'RSA' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', family: 'RSA' },
  '1.2.840.10045.4.3.2': { hash: 'sha256', family: 'EC' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', family: 'EC' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', family: 'EC' },
};

/**
 * The curves AWS IoT accepts (CreateCertificateFromCsr: NIST P-256, P-384, P-521), by the namedCurve
 * OID the key must carry (RFC 5480). Node reads a key with explicit curve parameters as the named
 * curve they match, but AWS IoT's credentials provider refuses such a certificate.
 */
const EC_CURVES: Record<string, { name: string; bits: number }> = {
  '1.2.840.10045.3.1.7': { name: 'prime256v1', bits: 256 },
  '1.3.132.0.34': { name: 'secp384r1', bits: 384 },
  '1.3.132.0.35': { name: 'secp521r1', bits: 521 },
};
export const MIN_RSA_BITS = 2048;
export const MAX_CSR_PEM_LENGTH = 8192;

const PEM_PATTERN =
  /^-----BEGIN (NEW )?CERTIFICATE REQUEST-----\n([A-Za-z0-9+/=\n]+)\n-----END (NEW )?CERTIFICATE REQUEST-----\n?$/;

/**
 * Checks a PEM PKCS#10 request the way AWS IoT will, before anything is written: the structure,
 * proof of possession (the signature verifies with the enclosed key), and a key type AWS IoT accepts.
 */
export function parseCsr(input: string): ParsedCsr {
  const pem = input.replace(/\r\n/g, '\n').trim();
  const match = PEM_PATTERN.exec(pem);
  if (!match || match[1] !== match[3])
    throw new CsrMalformedError('expected one PEM block "CERTIFICATE REQUEST"');
  const base64 = (match[2] as string).replace(/\n/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw new CsrMalformedError('the PEM body is not valid base64');
  }
  const der = Buffer.from(base64, 'base64');
  const parts = splitRequest(der);

  const key = publicKeyOf(parts.spki);
  const { keyType, keyBits, curve } = checkKey(key, parts.spki);
  const algorithm = SIGNATURE_ALGORITHMS[parts.signatureAlgorithmOid];
  if (!algorithm) {
    throw new CsrSignatureAlgorithmUnsupportedError(
      `signature algorithm ${parts.signatureAlgorithmOid} is not one of SHA-256/384/512 with RSA or ECDSA`,
    );
  }
  if (keyType !== algorithm.family) {
    throw new CsrSignatureAlgorithmUnsupportedError(
      `a ${algorithm.family} signature cannot come from a ${keyType} key`,
    );
  }
  let valid = false;
  try {
    valid = verify(algorithm.hash, parts.signedBytes, key, parts.signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new CsrSignatureInvalidError('the CSR signature does not verify with its own public key');

  return {
    pem: `${pem}\n`,
    sha256: createHash('sha256').update(der).digest('hex'),
    spki: parts.spki,
    publicKeySha256: publicKeySha256(parts.spki),
    keyType,
    keyBits,
    ...(curve ? { curve } : {}),
  };
}

/** The identity of a public key: SHA-256 of its SubjectPublicKeyInfo DER, hex. */
export function publicKeySha256(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}

interface RequestParts {
  signedBytes: Buffer;
  spki: Buffer;
  signatureAlgorithmOid: string;
  signature: Buffer;
}

function splitRequest(der: Buffer): RequestParts {
  try {
    const root = expectNode(der, 0, TAG.SEQUENCE);
    if (root.end !== der.length) throw new DerError('trailing bytes after the request');
    const [info, algorithm, signature, ...rest] = childrenOf(der, root);
    if (!info || !algorithm || !signature || rest.length > 0) throw new DerError('a request has three parts');
    if (info.tag !== TAG.SEQUENCE || algorithm.tag !== TAG.SEQUENCE || signature.tag !== TAG.BIT_STRING) {
      throw new DerError('unexpected part types');
    }
    const [version, subject, spki] = childrenOf(der, info);
    if (!version || version.tag !== TAG.INTEGER || !subject || subject.tag !== TAG.SEQUENCE) {
      throw new DerError('bad request info');
    }
    if (!spki || spki.tag !== TAG.SEQUENCE) throw new DerError('missing subject public key info');
    const [oid] = childrenOf(der, algorithm);
    if (!oid) throw new DerError('missing algorithm identifier');
    return {
      signedBytes: slice(der, { ...info, contentStart: info.start }),
      spki: slice(der, { ...spki, contentStart: spki.start }),
      signatureAlgorithmOid: decodeOid(der, oid),
      signature: bitStringBytes(der, signature),
    };
  } catch (error) {
    if (error instanceof DerError) throw new CsrMalformedError(`not a PKCS#10 request: ${error.message}`);
    throw error;
  }
}

function slice(der: Buffer, node: DerNode): Buffer {
  return der.subarray(node.contentStart, node.end);
}

function bitStringBytes(der: Buffer, node: DerNode): Buffer {
  if (node.end === node.contentStart || der[node.contentStart] !== 0)
    throw new DerError('signature has unused bits');
  return der.subarray(node.contentStart + 1, node.end);
}

function publicKeyOf(spki: Buffer): KeyObject {
  try {
    return createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new CsrKeyUnsupportedError('the public key could not be read (unknown algorithm or curve)');
  }
}

function checkKey(key: KeyObject, spki: Buffer): { keyType: KeyFamily; keyBits: number; curve?: string } {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS)
      throw new CsrKeyTooWeakError(`RSA keys need at least ${MIN_RSA_BITS} bits, this one has ${bits}`);
    return { keyType: 'RSA', keyBits: bits };
  }
  if (key.asymmetricKeyType === 'ec') {
    const named = namedCurveOidOf(spki);
    if (named === undefined) {
      throw new CsrKeyUnsupportedError(
        'the EC key must name its curve (P-256, P-384, P-521); explicit curve parameters are not accepted',
      );
    }
    const curve = EC_CURVES[named];
    if (curve === undefined || curve.name !== details.namedCurve)
      throw new CsrKeyUnsupportedError(
        `EC curve ${details.namedCurve ?? named} is not one of P-256, P-384, P-521`,
      );
    return { keyType: 'EC', keyBits: curve.bits, curve: curve.name };
  }
  throw new CsrKeyUnsupportedError(`${key.asymmetricKeyType ?? 'unknown'} keys are not accepted by AWS IoT`);
}

/**
 * The namedCurve OID in an EC SubjectPublicKeyInfo's AlgorithmIdentifier, or undefined when the
 * parameters are anything else (explicit ECParameters, implicitCurve NULL, absent).
 */
function namedCurveOidOf(spki: Buffer): string | undefined {
  try {
    const [algorithm] = childrenOf(spki, expectNode(spki, 0, TAG.SEQUENCE));
    if (!algorithm || algorithm.tag !== TAG.SEQUENCE) return undefined;
    const [, parameters] = childrenOf(spki, algorithm);
    return parameters?.tag === TAG.OID ? decodeOid(spki, parameters) : undefined;
  } catch (error) {
    if (error instanceof DerError) return undefined;
    throw error;
  }
}
