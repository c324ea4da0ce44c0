import { request } from 'node:https';
import { CreatePolicyCommand, CreateRoleAliasCommand, UpdateCertificateCommand } from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type RunningCredentialsProvider,
  startCredentialsProvider,
} from '../../sandbox/credentials/server.js';
import { CertificateAuthority } from '../../sandbox/pki/ca.js';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { type EmulatorFixture, startEmulator } from '../support/iot-emulator.js';
import { type ProvisionedDevice, provisionDevice } from '../support/provisioned-device.js';

let fx: EmulatorFixture;
let provider: RunningCredentialsProvider;
const roleAliasArn = 'arn:aws:iot:eu-west-1:123456789012:rolealias/device-alias';

beforeAll(async () => {
  fx = await startEmulator();
  provider = await startCredentialsProvider(fx.registry, fx.ca, '127.0.0.1', 0);
  await fx.client.send(
    new CreateRoleAliasCommand({
      roleAlias: 'device-alias',
      roleArn: 'arn:aws:iam::123456789012:role/device',
      credentialDurationSeconds: 1800,
    }),
  );
  await policy('assume', {
    Effect: 'Allow',
    Action: 'iot:AssumeRoleWithCertificate',
    Resource: roleAliasArn,
  });
  await policy('connect-only', { Effect: 'Allow', Action: 'iot:Connect', Resource: '*' });
});
afterAll(async () => {
  await provider.close();
  await fx.emulator.close();
});

async function policy(policyName: string, statement: object) {
  await fx.client.send(
    new CreatePolicyCommand({
      policyName,
      policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [statement] }),
    }),
  );
}

const provisionedDevice = (thingName: string, policyName = 'assume') =>
  provisionDevice(fx.client, thingName, policyName);

function fetchCredentials(
  device: ProvisionedDevice,
  thingName: string,
  alias = 'device-alias',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const [host, port] = provider.endpoint.split(':');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(port),
        path: `/role-aliases/${alias}/credentials`,
        headers: { 'x-amzn-iot-thingname': thingName },
        cert: device.certificatePem,
        key: device.keyPem,
        ca: fx.ca.certificate.pem,
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('credentials provider (mutual TLS)', () => {
  it('exchanges a provisioned certificate for credentials in AWS shape, expiring after the role alias duration', async () => {
    const device = await provisionedDevice('SN-ok');

    const { status, body } = await fetchCredentials(device, 'SN-ok');

    expect(status).toBe(200);
    const credentials = body.credentials as Record<string, string>;
    expect(credentials).toEqual({
      accessKeyId: expect.stringMatching(/^ASIA[0-9A-F]{16}$/),
      secretAccessKey: expect.any(String),
      sessionToken: expect.any(String),
      expiration: expect.stringMatching(/Z$/),
    });
    const lifetime = (Date.parse(credentials.expiration as string) - Date.now()) / 1000;
    expect(lifetime).toBeGreaterThan(1790);
    expect(lifetime).toBeLessThanOrEqual(1800);
  });

  it('answers 403 once the certificate is deactivated', async () => {
    const device = await provisionedDevice('SN-inactive');
    await fx.client.send(
      new UpdateCertificateCommand({ certificateId: device.certificateId, newStatus: 'INACTIVE' }),
    );

    expect((await fetchCredentials(device, 'SN-inactive')).status).toBe(403);
  });

  it('answers 403 to a thing name the certificate is not attached to', async () => {
    const device = await provisionedDevice('SN-mine');
    await provisionedDevice('SN-theirs');

    expect((await fetchCredentials(device, 'SN-theirs')).status).toBe(403);
  });

  it('answers 403 when no attached policy allows AssumeRoleWithCertificate', async () => {
    const device = await provisionedDevice('SN-connect-only', 'connect-only');

    expect((await fetchCredentials(device, 'SN-connect-only')).status).toBe(403);
  });

  it('answers 403 for a role alias the policy does not name', async () => {
    const device = await provisionedDevice('SN-other-alias');
    await fx.client.send(
      new CreateRoleAliasCommand({
        roleAlias: 'admin-alias',
        roleArn: 'arn:aws:iam::123456789012:role/admin',
      }),
    );

    expect((await fetchCredentials(device, 'SN-other-alias', 'admin-alias')).status).toBe(403);
  });

  it('answers 403 to a certificate from another CA, even for a key the registry knows', async () => {
    const device = await provisionedDevice('SN-foreign');
    const stranger = await CertificateAuthority.create('stranger');
    const csr = buildCsr();
    const foreign = await stranger.issue(
      (await import('node:crypto')).createPublicKey(csr.privateKey).export({ type: 'spki', format: 'der' }),
      { commonName: 'x', usage: 'client' },
    );

    const result = await fetchCredentials(
      {
        ...device,
        certificatePem: foreign.pem,
        keyPem: csr.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
      'SN-foreign',
    );

    expect(result.status).toBe(403);
  });
});
