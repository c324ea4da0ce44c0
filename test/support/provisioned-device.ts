import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateThingCommand,
  type IoTClient,
} from '@aws-sdk/client-iot';
import { buildCsr } from '../../sandbox/pki/csr.js';

export interface ProvisionedDevice {
  certificatePem: string;
  keyPem: string;
  certificateId: string;
}

/** A device the way registration leaves it: certificate ACTIVE, policy attached, thing attached. */
export async function provisionDevice(
  client: IoTClient,
  thingName: string,
  policyName: string,
): Promise<ProvisionedDevice> {
  const csr = buildCsr();
  const out = await client.send(
    new CreateCertificateFromCsrCommand({ certificateSigningRequest: csr.pem, setAsActive: true }),
  );
  await client.send(new CreateThingCommand({ thingName }));
  await client.send(new AttachPolicyCommand({ policyName, target: out.certificateArn }));
  await client.send(new AttachThingPrincipalCommand({ thingName, principal: out.certificateArn }));
  return {
    certificatePem: out.certificatePem as string,
    keyPem: csr.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certificateId: out.certificateId as string,
  };
}
