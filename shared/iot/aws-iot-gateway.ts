import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteThingCommand,
  DescribeCertificateCommand,
  DescribeEndpointCommand,
  DescribeThingCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  type IoTClient,
  ListCertificatesCommand,
  ListPrincipalThingsCommand,
  ListThingPrincipalsCommand,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { CsrRejectedError, ServiceUnavailableError, ThingNameTakenError, ThrottledError } from '../errors.js';
import type { IssuedCertificate } from '../inventory/inventory.js';
import type { CertificateDescription, CertificateSummary, EndpointType, IotGateway } from './iot-gateway.js';
import { ThrottleMeter } from './throttle-meter.js';

/** IotGateway over @aws-sdk/client-iot. Reached locally through AWS_ENDPOINT_URL_IOT, like any SDK client. */
export class AwsIotGateway implements IotGateway {
  private readonly guard: <T>(send: () => Promise<T>) => Promise<T>;

  constructor(
    private readonly client: IoTClient,
    meter = new ThrottleMeter(),
  ) {
    this.guard = (send) => guard(send, meter);
  }

  async createCertificateFromCsr(csrPem: string): Promise<IssuedCertificate> {
    try {
      const out = await this.guard(() =>
        this.client.send(
          new CreateCertificateFromCsrCommand({ certificateSigningRequest: csrPem, setAsActive: true }),
        ),
      );
      return issued(out);
    } catch (error) {
      if (nameOf(error) === 'InvalidRequestException') {
        throw new CsrRejectedError('AWS IoT did not accept this CSR', { cause: error });
      }
      throw error;
    }
  }

  async describeCertificate(certificateId: string): Promise<CertificateDescription | undefined> {
    try {
      const out = await this.guard(() => this.client.send(new DescribeCertificateCommand({ certificateId })));
      const description = out.certificateDescription;
      const { certificatePem, status, creationDate } = description ?? {};
      if (!certificatePem || !status || !creationDate) {
        throw new Error('DescribeCertificate returned an incomplete description');
      }
      return { ...issued({ ...description, certificatePem }), status, creationDate };
    } catch (error) {
      if (nameOf(error) === 'ResourceNotFoundException') return undefined;
      throw error;
    }
  }

  async thingPrincipals(thingName: string): Promise<string[]> {
    try {
      const principals: string[] = [];
      let nextToken: string | undefined;
      do {
        const out = await this.guard(() =>
          this.client.send(new ListThingPrincipalsCommand({ thingName, maxResults: 25, nextToken })),
        );
        principals.push(...(out.principals ?? []));
        nextToken = out.nextToken;
      } while (nextToken);
      return principals;
    } catch (error) {
      if (nameOf(error) === 'ResourceNotFoundException') return [];
      throw error;
    }
  }

  async principalThings(certificateArn: string): Promise<string[]> {
    const out = await this.guard(() =>
      this.client.send(new ListPrincipalThingsCommand({ principal: certificateArn, maxResults: 25 })),
    );
    return out.things ?? [];
  }

  async listCertificates(marker?: string): Promise<{ certificates: CertificateSummary[]; marker?: string }> {
    const out = await this.guard(() =>
      this.client.send(new ListCertificatesCommand({ pageSize: 250, ascendingOrder: false, marker })),
    );
    const certificates = (out.certificates ?? []).flatMap((c) =>
      c.certificateId && c.certificateArn && c.status && c.creationDate
        ? [
            {
              certificateId: c.certificateId,
              certificateArn: c.certificateArn,
              status: c.status,
              creationDate: c.creationDate,
            },
          ]
        : [],
    );
    return { certificates, ...(out.nextMarker ? { marker: out.nextMarker } : {}) };
  }

  async createThing(thingName: string, attributes: Record<string, string>): Promise<void> {
    try {
      await this.guard(() =>
        this.client.send(new CreateThingCommand({ thingName, attributePayload: { attributes } })),
      );
    } catch (error) {
      if (nameOf(error) === 'ResourceAlreadyExistsException') {
        throw new ThingNameTakenError(
          `thing ${thingName} already exists and was not created by this registration`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  async activateCertificate(certificateId: string): Promise<void> {
    await this.guard(() =>
      this.client.send(new UpdateCertificateCommand({ certificateId, newStatus: 'ACTIVE' })),
    );
  }

  async thingProvisioningId(thingName: string): Promise<string | undefined> {
    try {
      const out = await this.guard(() => this.client.send(new DescribeThingCommand({ thingName })));
      return out.attributes?.provisioningId;
    } catch (error) {
      if (nameOf(error) === 'ResourceNotFoundException') return undefined;
      throw error;
    }
  }

  async attachPolicy(policyName: string, certificateArn: string): Promise<void> {
    await this.guard(() => this.client.send(new AttachPolicyCommand({ policyName, target: certificateArn })));
  }

  async attachThingPrincipal(thingName: string, certificateArn: string): Promise<void> {
    await this.guard(() =>
      this.client.send(new AttachThingPrincipalCommand({ thingName, principal: certificateArn })),
    );
  }

  async detachPolicy(policyName: string, certificateArn: string): Promise<void> {
    await ignoreMissing(
      this.guard(() => this.client.send(new DetachPolicyCommand({ policyName, target: certificateArn }))),
    );
  }

  async detachThingPrincipal(thingName: string, certificateArn: string): Promise<void> {
    await ignoreMissing(
      this.guard(() =>
        this.client.send(new DetachThingPrincipalCommand({ thingName, principal: certificateArn })),
      ),
    );
  }

  async deactivateCertificate(certificateId: string): Promise<void> {
    await ignoreMissing(
      this.guard(() =>
        this.client.send(new UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' })),
      ),
    );
  }

  async deleteCertificate(certificateId: string): Promise<void> {
    await ignoreMissing(this.guard(() => this.client.send(new DeleteCertificateCommand({ certificateId }))));
  }

  async deleteThing(thingName: string): Promise<void> {
    await ignoreMissing(this.guard(() => this.client.send(new DeleteThingCommand({ thingName }))));
  }

  async describeEndpoint(endpointType: EndpointType): Promise<string> {
    const out = await this.guard(() => this.client.send(new DescribeEndpointCommand({ endpointType })));
    if (!out.endpointAddress) throw new Error(`DescribeEndpoint returned no address for ${endpointType}`);
    return out.endpointAddress;
  }
}

/** Maps AWS capacity errors to the client-facing 429/503; everything else propagates. */
async function guard<T>(send: () => Promise<T>, meter: ThrottleMeter): Promise<T> {
  try {
    const out = await send();
    meter.record(false);
    return out;
  } catch (error) {
    const name = nameOf(error);
    if (name === 'ThrottlingException' || name === 'LimitExceededException') {
      meter.record(true);
      throw new ThrottledError('AWS IoT is throttling', {
        retryAfterSeconds: meter.retryAfterSeconds(),
        cause: error,
      });
    }
    if (
      name === 'ServiceUnavailableException' ||
      name === 'InternalFailureException' ||
      name === 'TimeoutError'
    ) {
      throw new ServiceUnavailableError('AWS IoT is unavailable', { retryAfterSeconds: 5, cause: error });
    }
    throw error;
  }
}

function issued(out: {
  certificateId?: string;
  certificateArn?: string;
  certificatePem?: string;
}): IssuedCertificate {
  if (!out.certificateId || !out.certificateArn || !out.certificatePem) {
    throw new Error('AWS IoT returned an incomplete certificate');
  }
  return {
    certificateId: out.certificateId,
    certificateArn: out.certificateArn,
    certificatePem: out.certificatePem,
  };
}

function nameOf(error: unknown): string {
  return error instanceof Error ? error.name : '';
}

async function ignoreMissing(operation: Promise<unknown>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (nameOf(error) !== 'ResourceNotFoundException') throw error;
  }
}
