import { randomBytes } from 'node:crypto';
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateKeysAndCertificateCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteThingCommand,
  DescribeEndpointCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  IoTClient,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';

export const ACCOUNT = '123456789012';
export const CREDENTIALS_ENDPOINT = 'c2abcdef.credentials.iot.eu-west-1.amazonaws.com';
export const DATA_ENDPOINT = 'a1bcdefgh-ats.iot.eu-west-1.amazonaws.com';

/**
 * A real IoTClient whose transport is stubbed with AWS IoT's response shapes: the SDK's own
 * serialisation and error types are exercised, the network is not. Used where the sandbox's IoT
 * emulator cannot (yet) be made to fail on cue.
 */
export function stubbedIot(): { client: IoTClient; stub: AwsClientStub<IoTClient> } {
  const client = new IoTClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  return { client, stub: answerLikeAwsIot(mockClient(client)) };
}

/** Gives a stub (of one client, or of the IoTClient class) AWS IoT's happy-path answers. */
export function answerLikeAwsIot(stub: AwsClientStub<IoTClient>): AwsClientStub<IoTClient> {
  stub.on(CreateCertificateFromCsrCommand).callsFake(() => newCertificate());
  stub.on(CreateKeysAndCertificateCommand).callsFake(() => ({
    ...newCertificate(),
    keyPair: {
      PrivateKey: '-----BEGIN RSA PRIVATE KEY-----\nstub\n-----END RSA PRIVATE KEY-----\n',
      PublicKey: 'pub',
    },
  }));
  stub.on(CreateThingCommand).callsFake((input: { thingName: string }) => ({
    thingName: input.thingName,
    thingArn: `arn:aws:iot:eu-west-1:${ACCOUNT}:thing/${input.thingName}`,
    thingId: randomBytes(16).toString('hex'),
  }));
  stub.on(AttachPolicyCommand).resolves({});
  stub.on(AttachThingPrincipalCommand).resolves({});
  stub.on(DetachPolicyCommand).resolves({});
  stub.on(DetachThingPrincipalCommand).resolves({});
  stub.on(UpdateCertificateCommand).resolves({});
  stub.on(DeleteCertificateCommand).resolves({});
  stub.on(DeleteThingCommand).resolves({});
  stub
    .on(DescribeEndpointCommand, { endpointType: 'iot:CredentialProvider' })
    .resolves({ endpointAddress: CREDENTIALS_ENDPOINT })
    .on(DescribeEndpointCommand, { endpointType: 'iot:Data-ATS' })
    .resolves({ endpointAddress: DATA_ENDPOINT });
  return stub;
}

export function newCertificate() {
  const certificateId = randomBytes(32).toString('hex');
  return {
    certificateId,
    certificateArn: `arn:aws:iot:eu-west-1:${ACCOUNT}:cert/${certificateId}`,
    certificatePem: `-----BEGIN CERTIFICATE-----\n${certificateId}\n-----END CERTIFICATE-----\n`,
  };
}

/** An error as the SDK raises it for an AWS error response (name = the AWS error code). */
export function iotError(name: string): Error {
  return Object.assign(new Error(`${name}: stubbed`), { name, $fault: 'client', $metadata: {} });
}
