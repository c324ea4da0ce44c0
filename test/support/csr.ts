import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';

/**
 * Builds PKCS#10 requests byte by byte, so tests can make every variant a device might send:
 * good ones for each key type, and weak, tampered or mis-signed ones.
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
}

export interface BuiltCsr {
  pem: string;
  der: Buffer;
  privateKey: KeyObject;
}

const keys = new Map<KeyKind, { privateKey: KeyObject; publicKey: KeyObject }>();

/** Key generation is slow for RSA; each kind is generated once per test file and reused. */
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
  const { privateKey, publicKey } = keyPair(kind);
  const family = kind.startsWith('rsa') ? 'rsa' : kind === 'ed25519' ? 'ed25519' : 'ec';
  const hash = family === 'ed25519' ? 'none' : (options.hash ?? 'sha256');
  const info = der(
    0x30,
    der(0x02, Buffer.from([0])),
    distinguishedName(options.commonName ?? 'device'),
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa0),
  );
  const signer = options.signWithOtherKey ? keyPair(kind, true).privateKey : privateKey;
  const signature = sign(hash === 'none' ? null : hash, info, signer);
  const signed = options.tamper ? tamperWith(info) : info;
  const algorithm = der(
    0x30,
    oid(SIGNATURE_OIDS[`${family}:${hash}`] as string),
    ...(family === 'rsa' ? [der(0x05)] : []),
  );
  const request = der(0x30, signed, algorithm, der(0x03, Buffer.from([0]), signature));
  return { pem: toPem(request), der: request, privateKey };
}

export function toPem(derBytes: Buffer, label = 'CERTIFICATE REQUEST'): string {
  const lines = derBytes.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function tamperWith(info: Buffer): Buffer {
  const copy = Buffer.from(info);
  // The last byte of the subject's common name: still well-formed, no longer what was signed.
  const index = copy.indexOf(Buffer.from('device')) + 5;
  copy[index] = (copy[index] as number) ^ 0x01;
  return copy;
}

function distinguishedName(commonName: string): Buffer {
  return der(0x30, der(0x31, der(0x30, oid('2.5.4.3'), der(0x0c, Buffer.from(commonName, 'utf8')))));
}

function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128))
      chunk.unshift((value & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
}
