import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCsr, toPem } from '../../sandbox/pki/csr.js';
import { parseCsr } from '../../shared/csr/parse-csr.js';
import { codeThrownBy } from '../support/error-code.js';
import { explicitCurveCsr } from '../support/openssl-csr.js';

describe('parseCsr', () => {
  it.each([
    ['ec-p256', 'EC', 256],
    ['ec-p384', 'EC', 384],
    ['ec-p521', 'EC', 521],
    ['rsa-2048', 'RSA', 2048],
  ] as const)('accepts a %s request signed by its own key', (key, keyType, keyBits) => {
    const parsed = parseCsr(buildCsr({ key }).pem);

    expect(parsed).toMatchObject({ keyType, keyBits });
  });

  it.each(['sha384', 'sha512'] as const)('accepts an RSA request signed with %s', (hash) => {
    expect(parseCsr(buildCsr({ key: 'rsa-2048', hash }).pem).keyType).toBe('RSA');
  });

  it('accepts a request made by the openssl command line, CRLF line endings included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'csr-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'csr.pem'),
        '-subj',
        '/CN=SN-1/O=Factory',
      ],
      { stdio: 'ignore' },
    );
    const pem = readFileSync(join(dir, 'csr.pem'), 'utf8').replace(/\n/g, '\r\n');

    expect(parseCsr(pem)).toMatchObject({ keyType: 'EC', curve: 'prime256v1' });
  });

  it('identifies the same request by the SHA-256 of its DER, whatever the line endings', () => {
    const { pem } = buildCsr();

    expect(parseCsr(pem.replace(/\n/g, '\r\n')).sha256).toBe(parseCsr(pem).sha256);
  });

  it.each([
    ['text that is not PEM', 'hello'],
    ['a certificate instead of a request', toPem(Buffer.from('3003020100', 'hex'), 'CERTIFICATE')],
    [
      'PEM with invalid base64',
      '-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----',
    ],
    ['PEM around random bytes', toPem(Buffer.from('0123456789abcdef', 'hex'), 'CERTIFICATE REQUEST')],
    ['mismatched BEGIN and END labels', buildCsr().pem.replace('END CERTIFICATE', 'END NEW CERTIFICATE')],
  ])('rejects %s as CSR_MALFORMED', (_name, pem) => {
    expect(codeThrownBy(() => parseCsr(pem))).toBe('CSR_MALFORMED');
  });

  it('rejects a truncated request as CSR_MALFORMED', () => {
    const { der } = buildCsr();

    expect(codeThrownBy(() => parseCsr(toPem(der.subarray(0, der.length - 10), 'CERTIFICATE REQUEST')))).toBe(
      'CSR_MALFORMED',
    );
  });

  it('rejects a request with trailing bytes as CSR_MALFORMED', () => {
    const { der } = buildCsr();

    expect(
      codeThrownBy(() => parseCsr(toPem(Buffer.concat([der, Buffer.from([0])]), 'CERTIFICATE REQUEST'))),
    ).toBe('CSR_MALFORMED');
  });

  it('rejects a request whose signed part was altered as CSR_SIGNATURE_INVALID', () => {
    expect(codeThrownBy(() => parseCsr(buildCsr({ tamper: true }).pem))).toBe('CSR_SIGNATURE_INVALID');
  });

  it('rejects a request signed by a key other than its own as CSR_SIGNATURE_INVALID', () => {
    expect(codeThrownBy(() => parseCsr(buildCsr({ signWithOtherKey: true }).pem))).toBe(
      'CSR_SIGNATURE_INVALID',
    );
  });

  it('rejects an RSA-1024 key as CSR_KEY_TOO_WEAK', () => {
    expect(codeThrownBy(() => parseCsr(buildCsr({ key: 'rsa-1024' }).pem))).toBe('CSR_KEY_TOO_WEAK');
  });

  it.each(['ec-p192', 'ed25519'] as const)('rejects a %s key as CSR_KEY_UNSUPPORTED', (key) => {
    expect(codeThrownBy(() => parseCsr(buildCsr({ key }).pem))).toBe('CSR_KEY_UNSUPPORTED');
  });

  it('rejects an EC key with explicit curve parameters instead of a named curve as CSR_KEY_UNSUPPORTED', () => {
    expect(codeThrownBy(() => parseCsr(explicitCurveCsr()))).toBe('CSR_KEY_UNSUPPORTED');
  });

  it('rejects a SHA-1 signature as CSR_SIGNATURE_ALGORITHM_UNSUPPORTED', () => {
    expect(codeThrownBy(() => parseCsr(buildCsr({ key: 'rsa-2048', hash: 'sha1' }).pem))).toBe(
      'CSR_SIGNATURE_ALGORITHM_UNSUPPORTED',
    );
  });
});
