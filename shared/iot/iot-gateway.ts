import type { IssuedCertificate } from '../inventory/inventory.js';

export interface CertificateSummary {
  certificateId: string;
  certificateArn: string;
  status: string;
  creationDate: Date;
}

export interface CertificateDescription extends CertificateSummary {
  certificatePem: string;
}

export type EndpointType = 'iot:CredentialProvider' | 'iot:Data-ATS';

/** The AWS IoT control-plane operations registration needs (AWS IoT, or the sandbox's emulator). */
export interface IotGateway {
  /**
   * Certificates are created ACTIVE, saving the saga a round trip: one that is not yet attached to the
   * device policy authorizes nothing, and the reconciler's sweep retires any that no record names
   * (docs/reliability.md, "Why a certificate may be active before it is recorded").
   */
  createCertificateFromCsr(csrPem: string): Promise<IssuedCertificate>;
  /** Only for a resumed attempt whose recorded certificate is no longer ACTIVE. */
  activateCertificate(certificateId: string): Promise<void>;
  /** The certificate, or undefined if it does not exist (any more). */
  describeCertificate(certificateId: string): Promise<CertificateDescription | undefined>;
  /** The certificates (ARNs) attached to a thing; none if there is no such thing. */
  thingPrincipals(thingName: string): Promise<string[]>;
  /** The things a certificate is attached to (the first page: enough to tell "only ours"). */
  principalThings(certificateArn: string): Promise<string[]>;
  /** One page of the account's certificates, newest first. */
  listCertificates(marker?: string): Promise<{ certificates: CertificateSummary[]; marker?: string }>;
  /** The provisioningId attribute of a thing, or undefined if there is no such thing (or no attribute). */
  thingProvisioningId(thingName: string): Promise<string | undefined>;
  /** Creates the thing; throws ThingNameTakenError if a thing of that name with other attributes exists. */
  createThing(thingName: string, attributes: Record<string, string>): Promise<void>;
  attachPolicy(policyName: string, certificateArn: string): Promise<void>;
  attachThingPrincipal(thingName: string, certificateArn: string): Promise<void>;
  /** Detach and delete operations treat "already gone" as success, so compensation is idempotent. */
  detachPolicy(policyName: string, certificateArn: string): Promise<void>;
  detachThingPrincipal(thingName: string, certificateArn: string): Promise<void>;
  deactivateCertificate(certificateId: string): Promise<void>;
  deleteCertificate(certificateId: string): Promise<void>;
  deleteThing(thingName: string): Promise<void>;
  describeEndpoint(type: EndpointType): Promise<string>;
}
