import type { IssuedCertificate } from '../../shared/inventory/inventory.js';
import type {
  CertificateDescription,
  CertificateSummary,
  EndpointType,
  IotGateway,
} from '../../shared/iot/iot-gateway.js';

/**
 * An IotGateway that records the operations called on it, in order, and fails the ones a test
 * names. For unit tests of ordering; the AWS error mapping is tested through the SDK client.
 */
export class RecordingIot implements IotGateway {
  readonly calls: string[] = [];
  private readonly failures = new Map<string, () => Error>();

  failOn(operation: string, error: () => Error): this {
    this.failures.set(operation, error);
    return this;
  }

  private async record(operation: string): Promise<void> {
    this.calls.push(operation);
    const failure = this.failures.get(operation);
    if (failure) throw failure();
  }

  async createCertificateFromCsr(): Promise<IssuedCertificate> {
    await this.record('createCertificateFromCsr');
    return certificate;
  }
  async describeCertificate(): Promise<CertificateDescription | undefined> {
    await this.record('describeCertificate');
    return { ...certificate, status: 'INACTIVE', creationDate: new Date(0) };
  }
  async thingPrincipals(): Promise<string[]> {
    await this.record('thingPrincipals');
    return [];
  }
  async principalThings(): Promise<string[]> {
    await this.record('principalThings');
    return [];
  }
  async listCertificates(): Promise<{ certificates: CertificateSummary[] }> {
    await this.record('listCertificates');
    return { certificates: [] };
  }
  createThing = () => this.record('createThing');
  activateCertificate = () => this.record('activateCertificate');
  async thingProvisioningId(): Promise<string | undefined> {
    await this.record('thingProvisioningId');
    return undefined;
  }
  attachPolicy = () => this.record('attachPolicy');
  attachThingPrincipal = () => this.record('attachThingPrincipal');
  detachPolicy = () => this.record('detachPolicy');
  detachThingPrincipal = () => this.record('detachThingPrincipal');
  deactivateCertificate = () => this.record('deactivateCertificate');
  deleteCertificate = () => this.record('deleteCertificate');
  deleteThing = () => this.record('deleteThing');
  async describeEndpoint(type: EndpointType): Promise<string> {
    await this.record(`describeEndpoint:${type}`);
    return type === 'iot:CredentialProvider'
      ? 'c1.credentials.iot.eu-west-1.amazonaws.com'
      : 'a1-ats.iot.eu-west-1.amazonaws.com';
  }
}

export const certificate: IssuedCertificate = {
  certificateId: 'a'.repeat(64),
  certificateArn: `arn:aws:iot:eu-west-1:123456789012:cert/${'a'.repeat(64)}`,
  certificatePem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
};

export function awsError(name: string): Error {
  const error = new Error(`${name} from AWS`);
  error.name = name;
  return error;
}
