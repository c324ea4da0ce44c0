import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { bitString, der, NAME, name, nullValue, oid, sequence, toPem } from './der-writer.js';

export { toPem };

/**
 * Builds PKCS#10 requests byte by byte: the device simulator's CSRs, and for tests every variant a
 * device might send, good ones for each key type and weak, tampered or mis-signed ones.
 */
export type KeyKind = 'ec-p256' | 'ec-p384' | 'ec-p521' | 'rsa-2048' | 'rsa-1024' | 'ec-p192' | 'ed25519';

export interface CsrOptions {
  key?: KeyKind;
  commonName?: string;
  /** Digest for the signature: sha256 (default), sha384, sha512, or sha1 (unsupported by AWS IoT). */
  hash?: 'sha1' | 'sha256' | 'sha384' | 'sha512';
  /** Sign with a different key than the one in the request (no proof of possession). */
  signWithOtherKey?: boolean;
  /** Flip one byte of the signed part after signing. */
  tamper?: boolean;
  /** Use this key pair instead of the cached one of `key`'s kind. */
  keys?: { privateKey: KeyObject; publicKey: KeyObject };
}

export interface BuiltCsr {
  pem: string;
  der: Buffer;
  privateKey: KeyObject;
}

const keys = new Map<KeyKind, { privateKey: KeyObject; publicKey: KeyObject }>();

/** Key generation is slow for RSA; `fresh = false` generates each kind once per test file and reuses it. */
export function keyPair(kind: KeyKind, fresh = false): { privateKey: KeyObject; publicKey: KeyObject } {
  const cached = keys.get(kind);
  if (cached && !fresh) return cached;
  const pair = generate(kind);
  if (!fresh) keys.set(kind, pair);
  return pair;
}

function generate(kind: KeyKind) {
  switch (kind) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    case 'ec-p521':
      return generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
    case 'ec-p192':
      return generateKeyPairSync('ec', { namedCurve: 'prime192v1' });
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa-1024':
      return generateKeyPairSync('rsa', { modulusLength: 1024 });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
  }
}

const SIGNATURE_OIDS: Record<string, string> = {
  'rsa:sha1': '1.2.840.113549.1.1.5',
  'rsa:sha256': '1.2.840.113549.1.1.11',
  'rsa:sha384': '1.2.840.113549.1.1.12',
  'rsa:sha512': '1.2.840.113549.1.1.13',
  'ec:sha1': '1.2.840.10045.4.1',
  'ec:sha256': '1.2.840.10045.4.3.2',
  'ec:sha384': '1.2.840.10045.4.3.3',
  'ec:sha512': '1.2.840.10045.4.3.4',
  'ed25519:none': '1.3.101.112',
};

export function buildCsr(options: CsrOptions = {}): BuiltCsr {
  const kind = options.key ?? 'ec-p256';
  // A fresh key per request (one device, one key), except RSA, whose generation is slow: tests reuse it.
  const { privateKey, publicKey } = options.keys ?? keyPair(kind, !kind.startsWith('rsa'));
  const family = kind.startsWith('rsa') ? 'rsa' : kind === 'ed25519' ? 'ed25519' : 'ec';
  const hash = family === 'ed25519' ? 'none' : (options.hash ?? 'sha256');
  const info = sequence(
    der(0x02, Buffer.from([0])),
    name([[NAME.commonName, options.commonName ?? 'device']]),
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa0),
  );
  const signer = options.signWithOtherKey ? keyPair(kind, true).privateKey : privateKey;
  const signature = sign(hash === 'none' ? null : hash, info, signer);
  const signed = options.tamper ? tamperWith(info) : info;
  const algorithm = sequence(
    oid(SIGNATURE_OIDS[`${family}:${hash}`] as string),
    ...(family === 'rsa' ? [nullValue()] : []),
  );
  const request = sequence(signed, algorithm, bitString(signature));
  return { pem: toPem(request, 'CERTIFICATE REQUEST'), der: request, privateKey };
}

function tamperWith(info: Buffer): Buffer {
  const copy = Buffer.from(info);
  // The last byte of the subject's common name: still well-formed, no longer what was signed.
  const index = copy.indexOf(Buffer.from('device')) + 5;
  copy[index] = (copy[index] as number) ^ 0x01;
  return copy;
}
