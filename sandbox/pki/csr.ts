import { constants, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { ecdsaWithSHA1, ecdsaWithSHA256, ecdsaWithSHA384, ecdsaWithSHA512 } from '@peculiar/asn1-ecc';
import {
  id_mgf1,
  id_RSASSA_PSS,
  id_sha1WithRSAEncryption,
  id_sha256WithRSAEncryption,
  id_sha384WithRSAEncryption,
  id_sha512WithRSAEncryption,
  RsaSaPssParams,
  sha256,
  sha384,
  sha512,
} from '@peculiar/asn1-rsa';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';

/**
 * Builds PKCS#10 requests with the @peculiar/asn1 schemas, signed by Node: the device simulator's
 * CSRs, and for tests every variant a device might send, good ones for each key type and weak,
 * tampered or mis-signed ones. Synchronous on purpose (tests build requests inline).
 */
export type KeyKind = 'ec-p256' | 'ec-p384' | 'ec-p521' | 'rsa-2048' | 'rsa-1024' | 'ec-p192' | 'ed25519';

type Hash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface CsrOptions {
  key?: KeyKind;
  commonName?: string;
  /** Digest for the signature: sha256 (default), sha384, sha512, or sha1 (unsupported by AWS IoT). */
  hash?: Hash;
  /** For RSA keys: sign with RSASSA-PSS (MGF1 with the same digest, salt as long as it) instead of PKCS #1 v1.5. */
  pss?: boolean;
  /** Sign with a different key than the one in the request (no proof of possession). */
  signWithOtherKey?: boolean;
  /** Flip one byte of the signed part after signing. */
  tamper?: boolean;
  /**
   * Rewrite the encoded request info before it is signed, keeping its length: a request whose
   * signature is good but whose content is whatever the test makes of it.
   */
  rewriteInfo?: (info: Buffer) => Buffer;
  /** Use this key pair instead of the cached one of `key`'s kind. */
  keys?: { privateKey: KeyObject; publicKey: KeyObject };
}

export interface BuiltCsr {
  pem: string;
  der: Buffer;
  privateKey: KeyObject;
}

const COMMON_NAME = '2.5.4.3';
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

/**
 * From the OIDs, not @peculiar/asn1-rsa's ready-made identifiers: in 2.11.1 its
 * `sha256WithRSAEncryption` carries sha512-256WithRSAEncryption's OID (and sha224's sha512-224's).
 */
const rsaPkcs1 = (algorithm: string) => new AlgorithmIdentifier({ algorithm, parameters: null });
const RSA_PKCS1: Record<Hash, AlgorithmIdentifier> = {
  sha1: rsaPkcs1(id_sha1WithRSAEncryption),
  sha256: rsaPkcs1(id_sha256WithRSAEncryption),
  sha384: rsaPkcs1(id_sha384WithRSAEncryption),
  sha512: rsaPkcs1(id_sha512WithRSAEncryption),
};
const ECDSA: Record<Hash, AlgorithmIdentifier> = {
  sha1: ecdsaWithSHA1,
  sha256: ecdsaWithSHA256,
  sha384: ecdsaWithSHA384,
  sha512: ecdsaWithSHA512,
};
const DIGESTS: Record<Exclude<Hash, 'sha1'>, { algorithm: AlgorithmIdentifier; bytes: number }> = {
  sha256: { algorithm: sha256, bytes: 32 },
  sha384: { algorithm: sha384, bytes: 48 },
  sha512: { algorithm: sha512, bytes: 64 },
};

export function buildCsr(options: CsrOptions = {}): BuiltCsr {
  const kind = options.key ?? 'ec-p256';
  // A fresh key per request (one device, one key), except RSA, whose generation is slow: tests reuse it.
  const { privateKey, publicKey } = options.keys ?? keyPair(kind, !kind.startsWith('rsa'));
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name([
      new RelativeDistinguishedName([
        new AttributeTypeAndValue({
          type: COMMON_NAME,
          value: new AttributeValue({ utf8String: options.commonName ?? 'device' }),
        }),
      ]),
    ]),
    subjectPKInfo: AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
  });
  const encoded = Buffer.from(AsnConvert.serialize(info));
  const signed = options.rewriteInfo ? sameLength(encoded, options.rewriteInfo(encoded)) : encoded;
  const signer = options.signWithOtherKey ? keyPair(kind, true).privateKey : privateKey;
  const { algorithm, signature } = signWith(kind, options, signed, signer);
  const request = Buffer.from(
    AsnConvert.serialize(
      new CertificationRequest({
        certificationRequestInfo: info,
        signatureAlgorithm: algorithm,
        signature: new Uint8Array(signature).buffer,
      }),
    ),
  );
  // The schema encodes the request info from its fields: put the bytes that were signed (or the
  // tampered ones) in its place.
  (options.tamper ? tamperWith(signed) : signed).copy(request, request.indexOf(encoded));
  return { pem: toPem(request, 'CERTIFICATE REQUEST'), der: request, privateKey };
}

function signWith(
  kind: KeyKind,
  options: CsrOptions,
  data: Buffer,
  key: KeyObject,
): { algorithm: AlgorithmIdentifier; signature: Buffer } {
  const hash = options.hash ?? 'sha256';
  if (kind === 'ed25519') {
    return {
      algorithm: new AlgorithmIdentifier({ algorithm: '1.3.101.112' }),
      signature: sign(null, data, key),
    };
  }
  if (!kind.startsWith('rsa')) return { algorithm: ECDSA[hash], signature: sign(hash, data, key) };
  if (!options.pss) return { algorithm: RSA_PKCS1[hash], signature: sign(hash, data, key) };
  if (hash === 'sha1') throw new Error('RSASSA-PSS requests are built with SHA-256, SHA-384 or SHA-512');
  const digest = DIGESTS[hash];
  const parameters = new RsaSaPssParams({
    hashAlgorithm: digest.algorithm,
    maskGenAlgorithm: new AlgorithmIdentifier({
      algorithm: id_mgf1,
      parameters: AsnConvert.serialize(digest.algorithm),
    }),
    saltLength: digest.bytes,
  });
  return {
    algorithm: new AlgorithmIdentifier({
      algorithm: id_RSASSA_PSS,
      parameters: AsnConvert.serialize(parameters),
    }),
    signature: sign(hash, data, {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: digest.bytes,
    }),
  };
}

function sameLength(original: Buffer, rewritten: Buffer): Buffer {
  if (rewritten.length !== original.length) throw new Error('rewriteInfo must keep the length of the info');
  return rewritten;
}

function tamperWith(info: Buffer): Buffer {
  const copy = Buffer.from(info);
  // The last byte of the subject's common name: still well-formed, no longer what was signed.
  const index = copy.indexOf(Buffer.from('device')) + 5;
  copy[index] = (copy[index] as number) ^ 0x01;
  return copy;
}

export function toPem(derBytes: Buffer, label: string): string {
  const lines = derBytes.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
