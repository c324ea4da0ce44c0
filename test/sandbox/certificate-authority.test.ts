import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { persistentCa, persistentPaths, prepare } from '../../sandbox/persistence.js';
import { CertificateAuthority } from '../../sandbox/pki/ca.js';
import { keyPair } from '../../sandbox/pki/csr.js';
import { opensslVerify } from '../support/openssl-verify.js';

const deviceKey = () => keyPair('ec-p256', true).publicKey.export({ type: 'spki', format: 'der' });
const client = { commonName: 'AWS IoT Certificate', usage: 'client' } as const;

describe('the sandbox CA (@peculiar/x509)', () => {
  it('is a self-signed CA certificate that passes openssl verify -x509_strict', async () => {
    const ca = await CertificateAuthority.create();

    expect(opensslVerify(ca.certificate.pem, ca.certificate.pem)).toBe('certificate.pem: OK');
  });

  it("issues the credentials provider's server certificate for its address and localhost, valid for a TLS server", async () => {
    const ca = await CertificateAuthority.create();

    const server = await ca.issue(deviceKey(), {
      commonName: '127.0.0.1',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
      dnsNames: ['localhost'],
    });

    const strict = (...options: string[]) => opensslVerify(ca.certificate.pem, server.pem, ...options);
    expect(strict('-purpose', 'sslserver', '-verify_ip', '127.0.0.1')).toBe('certificate.pem: OK');
    expect(strict('-purpose', 'sslserver', '-verify_hostname', 'localhost')).toBe('certificate.pem: OK');
    expect(strict('-purpose', 'sslclient')).toMatch(/unsuitable certificate purpose/);
  });

  it('with --persist, is saved once and restored on the next start, still issuing certificates that chain to it', async () => {
    const paths = persistentPaths(mkdtempSync(join(tmpdir(), 'persist-ca-')));
    prepare(paths);

    const first = await persistentCa(paths);
    const second = await persistentCa(paths);

    expect(second.certificate.der).toEqual(first.certificate.der);
    const issued = await second.issue(deviceKey(), client);
    expect(opensslVerify(readFileSync(paths.caCertificate, 'utf8'), issued.pem)).toBe('certificate.pem: OK');
  });

  it('restores a CA persisted by the earlier sandbox (hand-written DER): a kept .sandbox/persist goes on working', async () => {
    const paths = persistentPaths(mkdtempSync(join(tmpdir(), 'persist-old-ca-')));
    prepare(paths);
    copyFileSync('test/fixtures/persisted-ca/ca.pem', paths.caCertificate);
    copyFileSync('test/fixtures/persisted-ca/ca-key.pem', paths.caKey);

    const ca = await persistentCa(paths);
    const issued = await ca.issue(deviceKey(), client);

    expect(opensslVerify(readFileSync(paths.caCertificate, 'utf8'), issued.pem)).toBe('certificate.pem: OK');
  });

  it('refuses a saved key that does not belong to the saved certificate', async () => {
    const one = (await CertificateAuthority.create()).export();
    const other = (await CertificateAuthority.create()).export();

    await expect(
      CertificateAuthority.restore({ certificatePem: one.certificatePem, keyPem: other.keyPem }),
    ).rejects.toThrow(/does not match/);
  });
});
