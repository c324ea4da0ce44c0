import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `openssl verify -x509_strict` of a certificate against a CA certificate, with any further options
 * (`-purpose sslserver`, `-verify_ip …`): openssl's output ("certificate.pem: OK"), or its error.
 */
export function opensslVerify(caPem: string, certificatePem: string, ...options: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'strict-'));
  writeFileSync(join(dir, 'ca.pem'), caPem);
  writeFileSync(join(dir, 'certificate.pem'), certificatePem);
  try {
    return execFileSync(
      'openssl',
      ['verify', '-x509_strict', ...options, '-CAfile', 'ca.pem', 'certificate.pem'],
      {
        cwd: dir,
        stdio: 'pipe',
      },
    )
      .toString()
      .trim();
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? error);
  }
}
