import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IotRegistry } from '../../sandbox/iot/registry.js';
import { persistentRegistry } from '../../sandbox/persistence.js';
import { CertificateAuthority } from '../../sandbox/pki/ca.js';
import { buildCsr } from '../../sandbox/pki/csr.js';

async function persisted() {
  const file = join(mkdtempSync(join(tmpdir(), 'persist-registry-')), 'iot-registry.json');
  const registry = new IotRegistry({
    region: 'eu-west-1',
    accountId: '123456789012',
    ca: await CertificateAuthority.create(),
    endpoints: {},
  });
  return { file, registry: persistentRegistry(registry, file) };
}

describe('--persist: the IoT registry snapshot', () => {
  it('has a certificate issued from a CSR on disk by the time the caller hears of it (issuing is asynchronous)', async () => {
    const { file, registry } = await persisted();

    const record = await registry.createCertificateFromCsr(buildCsr().pem, true);

    expect(readFileSync(file, 'utf8')).toContain(record.certificateId);
  });

  it('gives a restarted registry the certificates issued before', async () => {
    const { file, registry } = await persisted();
    const issued = await registry.createCertificateFromCsr(buildCsr().pem, true);

    const restarted = persistentRegistry(new IotRegistry({ ...registry.options, endpoints: {} }), file);

    expect(restarted.certificate(issued.certificateId).status).toBe('ACTIVE');
  });
});
