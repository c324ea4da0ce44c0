import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A P-256 request whose SubjectPublicKeyInfo spells the curve out as explicit ECParameters instead
 * of naming it: Node reads such a key as prime256v1, AWS IoT's credentials provider refuses it.
 * Made by the openssl command line, as a device toolchain would.
 */
export function explicitCurveCsr(): string {
  const dir = mkdtempSync(join(tmpdir(), 'csr-explicit-'));
  const key = join(dir, 'key.pem');
  const csr = join(dir, 'csr.pem');
  execFileSync(
    'openssl',
    ['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-out', key],
    {
      stdio: 'ignore',
    },
  );
  execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=SN-1/O=Factory', '-out', csr], {
    stdio: 'ignore',
  });
  return readFileSync(csr, 'utf8');
}
