import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  algorithmFor,
  certificateId,
  certificateThumbprint,
  deviceProof,
} from '../../sandbox/device-proof.js';
import { CertificateAuthority } from '../../sandbox/pki/ca.js';

const ca = await CertificateAuthority.create();
const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const certificate = await ca.issue(keys.publicKey.export({ type: 'spki', format: 'der' }), {
  commonName: 'SN-1',
  usage: 'client',
});

describe("a device's proof of possession", () => {
  it('is a JWS that verifies with the public key of the certificate its x5t#S256 names', async () => {
    const now = new Date('2026-12-03T12:00:00.000Z');
    const jws = await deviceProof({
      action: 'rotate',
      serialNumber: 'SN-1',
      certificatePem: certificate.pem,
      privateKey: keys.privateKey,
      csr: '-----BEGIN CERTIFICATE REQUEST-----…',
      now,
    });

    const { payload, protectedHeader } = await compactVerify(
      jws,
      new X509Certificate(certificate.pem).publicKey,
    );
    expect(protectedHeader).toEqual({
      alg: 'ES256',
      typ: 'fleet-device-proof',
      'x5t#S256': createHash('sha256').update(certificate.der).digest('base64url'),
    });
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({
      action: 'rotate',
      serialNumber: 'SN-1',
      iat: now.getTime() / 1000,
      nonce: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      csr: '-----BEGIN CERTIFICATE REQUEST-----…',
    });
  });

  it('names the certificate by the AWS IoT certificateId in base64url', () => {
    const id = certificateId(certificate.pem);

    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(certificateThumbprint(certificate.pem)).toBe(Buffer.from(id, 'hex').toString('base64url'));
  });

  it('has a fresh nonce every time, and no csr unless rotating', async () => {
    const input = {
      action: 'check' as const,
      serialNumber: 'SN-1',
      certificatePem: certificate.pem,
      privateKey: keys.privateKey,
    };
    const payloads = await Promise.all(
      [1, 2].map(async () => {
        const jws = await deviceProof(input);
        expect(decodeProtectedHeader(jws).alg).toBe('ES256');
        return JSON.parse(Buffer.from(jws.split('.')[1] as string, 'base64url').toString()) as {
          nonce: string;
          csr?: string;
        };
      }),
    );

    expect(payloads[0]?.nonce).not.toBe(payloads[1]?.nonce);
    expect(payloads.every((payload) => payload.csr === undefined)).toBe(true);
  });

  it.each([
    ['an EC P-384 key', generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey, 'ES384'],
    ['an EC P-521 key', generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey, 'ES512'],
    ['an RSA key', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'RS256'],
  ])('signs with %s as %s', (_kind, key, alg) => {
    expect(algorithmFor(key)).toBe(alg);
  });

  it('refuses a key AWS IoT would not certify', () => {
    expect(() => algorithmFor(generateKeyPairSync('ed25519').privateKey)).toThrow(/no proof algorithm/);
  });
});
