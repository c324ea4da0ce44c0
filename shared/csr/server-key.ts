import { generateKeyPair, sign } from 'node:crypto';
import { promisify } from 'node:util';
import { publicKeySha256 } from './parse-csr.js';

export interface ServerKey {
  privateKeyPem: string;
  /** A PKCS#10 request for the key, signed by it, for CreateCertificateFromCsr. */
  csrPem: string;
  publicKeySha256: string;
}

const generateRsa = promisify(generateKeyPair);

/**
 * Server-side key generation: an RSA 2048 key (what CreateKeysAndCertificate would give) made here
 * and certified through CreateCertificateFromCsr. Making the key ourselves means its public key is
 * recorded before AWS IoT creates a certificate for it, so the reconciler can recognise that
 * certificate as ours even if the attempt dies before recording it. Runs on libuv's thread pool.
 */
export async function generateServerKey(): Promise<ServerKey> {
  const { privateKey, publicKey } = await generateRsa('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = sequence(
    der(0x02, Buffer.from([0])), // version 0
    sequence(), // empty subject: AWS IoT takes the subject from its own template
    spki,
    der(0xa0), // no attributes
  );
  const request = sequence(
    info,
    SHA256_WITH_RSA,
    der(0x03, Buffer.from([0]), sign('sha256', info, privateKey)),
  );
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    csrPem: toPem(request, 'CERTIFICATE REQUEST'),
    publicKeySha256: publicKeySha256(spki),
  };
}

/** AlgorithmIdentifier sha256WithRSAEncryption (1.2.840.113549.1.1.11) with NULL parameters. */
const SHA256_WITH_RSA = Buffer.from('300d06092a864886f70d01010b0500', 'hex');

function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

function sequence(...contents: Buffer[]): Buffer {
  return der(0x30, ...contents);
}

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function toPem(bytes: Buffer, label: string): string {
  const lines = bytes.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
