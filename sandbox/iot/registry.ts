import { createHash, generateKeyPairSync, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import type { CertificateAuthority } from '../pki/ca.js';
import { checkCsr } from './csr-check.js';
import { IotError } from './iot-error.js';

export type CertificateStatus = 'ACTIVE' | 'INACTIVE' | 'REVOKED' | 'PENDING_TRANSFER' | 'PENDING_ACTIVATION';
const STATUSES: CertificateStatus[] = [
  'ACTIVE',
  'INACTIVE',
  'REVOKED',
  'PENDING_TRANSFER',
  'PENDING_ACTIVATION',
];

export interface CertificateRecord {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  status: CertificateStatus;
  creationDate: Date;
  lastModifiedDate: Date;
  generationId: string;
}

export interface ThingRecord {
  thingName: string;
  thingArn: string;
  thingId: string;
  attributes: Record<string, string>;
  version: number;
}

export interface PolicyRecord {
  policyName: string;
  policyArn: string;
  policyDocument: string;
  creationDate: Date;
  generationId: string;
}

export interface RoleAliasRecord {
  roleAlias: string;
  roleAliasArn: string;
  roleArn: string;
  credentialDurationSeconds: number;
  owner: string;
  creationDate: Date;
  lastModifiedDate: Date;
}

export interface RegistryOptions {
  region: string;
  accountId: string;
  ca: CertificateAuthority;
  endpoints: Record<string, string>;
}

const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;
const ROLE_ALIAS = /^[\w=,@-]{1,128}$/;
const ATTRIBUTE_NAME = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
/** Things without a thing type carry at most three attributes in AWS IoT. */
const MAX_UNTYPED_ATTRIBUTES = 3;
/** What AWS IoT names the subject of the certificates it issues. */
const CLIENT_CERTIFICATE = { commonName: 'AWS IoT Certificate', usage: 'client' } as const;

/**
 * The AWS IoT registry the sandbox emulates: certificates issued by the sandbox CA, things,
 * policies, role aliases and their attachments, with AWS's semantics and error types.
 */
export class IotRegistry {
  readonly certificates = new Map<string, CertificateRecord>();
  readonly things = new Map<string, ThingRecord>();
  readonly policies = new Map<string, PolicyRecord>();
  readonly roleAliases = new Map<string, RoleAliasRecord>();
  /** thing name -> principal ARNs */
  readonly thingPrincipals = new Map<string, Set<string>>();
  /** policy name -> target ARNs */
  readonly policyTargets = new Map<string, Set<string>>();
  /**
   * Detachments still propagating, as "thing|policy \0 name \0 principal" -> epoch ms: AWS IoT's
   * deletes keep seeing them attached for a while (listings and the credentials provider do not).
   */
  private readonly detaching = new Map<string, number>();
  /** Certificates and things created and deleted since this registry started (a benchmark's wasted work). */
  readonly lifetime = { certificatesCreated: 0, certificatesDeleted: 0, thingsCreated: 0, thingsDeleted: 0 };

  constructor(readonly options: RegistryOptions) {}

  arn(resource: string): string {
    return `arn:aws:iot:${this.options.region}:${this.options.accountId}:${resource}`;
  }

  // --- certificates --------------------------------------------------------------------------
  /** The request is checked by the emulator's own rules (`checkCsr`), not by the product's. */
  async createCertificateFromCsr(
    csrPem: string | undefined,
    setAsActive: boolean,
  ): Promise<CertificateRecord> {
    if (!csrPem) throw new IotError('InvalidRequestException', 'certificateSigningRequest is required');
    const publicKey = await checkCsr(csrPem);
    const issued = await this.options.ca.issue(new Uint8Array(publicKey.rawData), CLIENT_CERTIFICATE);
    return this.storeCertificate(issued.pem, setAsActive);
  }

  async createKeysAndCertificate(setAsActive: boolean) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const issued = await this.options.ca.issue(spki, CLIENT_CERTIFICATE);
    const record = this.storeCertificate(issued.pem, setAsActive);
    return {
      record,
      keyPair: {
        PublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        PrivateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      },
    };
  }

  private storeCertificate(pem: string, setAsActive: boolean): CertificateRecord {
    // As in AWS IoT, the certificate id is the SHA-256 of the certificate's DER.
    const certificateId = createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
    const now = new Date();
    const record: CertificateRecord = {
      certificateId,
      certificateArn: this.arn(`cert/${certificateId}`),
      certificatePem: pem,
      status: setAsActive ? 'ACTIVE' : 'INACTIVE',
      creationDate: now,
      lastModifiedDate: now,
      generationId: randomUUID(),
    };
    this.certificates.set(certificateId, record);
    this.lifetime.certificatesCreated += 1;
    return record;
  }

  certificate(certificateId: string): CertificateRecord {
    const record = this.certificates.get(certificateId);
    if (!record)
      throw new IotError('ResourceNotFoundException', `The certificate ${certificateId} does not exist`);
    return record;
  }

  certificateByArn(arn: string): CertificateRecord | undefined {
    const prefix = this.arn('cert/');
    return arn.startsWith(prefix) ? this.certificates.get(arn.slice(prefix.length)) : undefined;
  }

  updateCertificate(certificateId: string, newStatus: string | undefined): void {
    const record = this.certificate(certificateId);
    if (!newStatus || !STATUSES.includes(newStatus as CertificateStatus)) {
      throw new IotError('InvalidRequestException', `Invalid newStatus: ${newStatus}`);
    }
    // AWS: "Setting the status to PENDING_TRANSFER or PENDING_ACTIVATION will result in an exception
    // being thrown" (statuses AWS IoT uses internally); the API reference names no type for it.
    if (newStatus === 'PENDING_TRANSFER' || newStatus === 'PENDING_ACTIVATION') {
      throw new IotError('InvalidRequestException', `newStatus ${newStatus} is used internally by AWS IoT`);
    }
    if (record.status === 'REVOKED' && newStatus !== 'REVOKED') {
      throw new IotError('CertificateStateException', 'A revoked certificate cannot change status');
    }
    record.status = newStatus as CertificateStatus;
    record.lastModifiedDate = new Date();
  }

  deleteCertificate(certificateId: string, forceDelete: boolean): void {
    const record = this.certificate(certificateId);
    if (record.status === 'ACTIVE') {
      throw new IotError(
        'CertificateStateException',
        'Certificate must be deactivated (not ACTIVE) before deletion.',
      );
    }
    if (
      this.thingsOf(record.certificateArn).length > 0 ||
      this.stillDetaching('thing', undefined, record.certificateArn)
    ) {
      throw new IotError(
        'DeleteConflictException',
        'Things must be detached before deleting the certificate.',
      );
    }
    const policies = this.policiesOf(record.certificateArn);
    const propagating = this.stillDetaching('policy', undefined, record.certificateArn);
    if ((policies.length > 0 || propagating) && !forceDelete) {
      throw new IotError(
        'DeleteConflictException',
        'Policies must be detached before deleting the certificate.',
      );
    }
    for (const policy of policies) this.policyTargets.get(policy.policyName)?.delete(record.certificateArn);
    this.certificates.delete(certificateId);
    this.lifetime.certificatesDeleted += 1;
  }

  // --- things --------------------------------------------------------------------------------
  createThing(thingName: string, attributes: Record<string, string> = {}): ThingRecord {
    assertPattern(THING_NAME, thingName, 'thingName');
    const entries = Object.entries(attributes);
    if (entries.length > MAX_UNTYPED_ATTRIBUTES) {
      throw new IotError(
        'InvalidRequestException',
        `A thing without a thing type can have at most ${MAX_UNTYPED_ATTRIBUTES} attributes`,
      );
    }
    for (const [key, value] of entries) {
      assertPattern(ATTRIBUTE_NAME, key, 'attribute name');
      assertPattern(ATTRIBUTE_VALUE, value, 'attribute value');
    }
    const existing = this.things.get(thingName);
    if (existing) {
      // AWS: the same name with the same configuration returns the existing thing.
      if (sameAttributes(existing.attributes, attributes)) return existing;
      throw new IotError(
        'ResourceAlreadyExistsException',
        `Thing ${thingName} already exists with different attributes`,
      );
    }
    const record = {
      thingName,
      thingArn: this.arn(`thing/${thingName}`),
      thingId: randomUUID(),
      attributes: { ...attributes },
      version: 1,
    };
    this.things.set(thingName, record);
    this.lifetime.thingsCreated += 1;
    return record;
  }

  thing(thingName: string): ThingRecord {
    const record = this.things.get(thingName);
    if (!record) throw new IotError('ResourceNotFoundException', `Thing ${thingName} cannot be found.`);
    return record;
  }

  deleteThing(thingName: string, expectedVersion: number | undefined): void {
    const record = this.things.get(thingName);
    if (!record) return; // AWS: deleting a thing that doesn't exist succeeds.
    if (expectedVersion !== undefined && expectedVersion !== record.version) {
      throw new IotError('VersionConflictException', `Thing ${thingName} is at version ${record.version}`);
    }
    if ((this.thingPrincipals.get(thingName)?.size ?? 0) > 0 || this.stillDetaching('thing', thingName)) {
      throw new IotError(
        'InvalidRequestException',
        `Cannot delete thing ${thingName}: it has attached principals`,
      );
    }
    this.things.delete(thingName);
    this.thingPrincipals.delete(thingName);
    this.lifetime.thingsDeleted += 1;
  }

  attachThingPrincipal(thingName: string, principal: string | undefined): void {
    this.thing(thingName);
    this.principalCertificate(principal);
    let principals = this.thingPrincipals.get(thingName);
    if (!principals) {
      principals = new Set();
      this.thingPrincipals.set(thingName, principals);
    }
    principals.add(principal as string);
  }

  detachThingPrincipal(thingName: string, principal: string | undefined, propagationMs = 0): void {
    this.thing(thingName);
    if (!principal) throw new IotError('InvalidRequestException', 'principal is required');
    if (this.thingPrincipals.get(thingName)?.delete(principal)) {
      this.propagate('thing', thingName, principal, propagationMs);
    }
  }

  private propagate(kind: 'thing' | 'policy', name: string, principal: string, ms: number): void {
    if (ms > 0) this.detaching.set(`${kind}\0${name}\0${principal}`, Date.now() + ms);
  }

  /** Whether a detachment of this kind (for `name` and/or `principal`) is still propagating. */
  private stillDetaching(kind: 'thing' | 'policy', name?: string, principal?: string): boolean {
    const now = Date.now();
    for (const [key, until] of this.detaching) {
      if (until <= now) {
        this.detaching.delete(key);
        continue;
      }
      const [k, n, p] = key.split('\0');
      if (k === kind && (name === undefined || n === name) && (principal === undefined || p === principal)) {
        return true;
      }
    }
    return false;
  }

  principalsOf(thingName: string): string[] {
    this.thing(thingName);
    return [...(this.thingPrincipals.get(thingName) ?? [])];
  }

  thingsOf(principal: string): string[] {
    return [...this.thingPrincipals]
      .filter(([, principals]) => principals.has(principal))
      .map(([name]) => name);
  }

  private principalCertificate(principal: string | undefined): CertificateRecord {
    if (!principal) throw new IotError('InvalidRequestException', 'principal is required');
    const record = this.certificateByArn(principal);
    if (!record) throw new IotError('ResourceNotFoundException', `The principal ${principal} does not exist`);
    return record;
  }

  // --- policies ------------------------------------------------------------------------------
  createPolicy(policyName: string, policyDocument: string | undefined): PolicyRecord {
    assertPattern(POLICY_NAME, policyName, 'policyName');
    if (this.policies.has(policyName)) {
      throw new IotError('ResourceAlreadyExistsException', `Policy ${policyName} already exists`);
    }
    assertPolicyDocument(policyDocument);
    const record = {
      policyName,
      policyArn: this.arn(`policy/${policyName}`),
      policyDocument: policyDocument as string,
      creationDate: new Date(),
      generationId: randomBytes(16).toString('hex'),
    };
    this.policies.set(policyName, record);
    return record;
  }

  policy(policyName: string): PolicyRecord {
    const record = this.policies.get(policyName);
    if (!record) throw new IotError('ResourceNotFoundException', `Policy ${policyName} does not exist`);
    return record;
  }

  attachPolicy(policyName: string, target: string | undefined): void {
    this.policy(policyName);
    this.principalCertificate(target);
    let targets = this.policyTargets.get(policyName);
    if (!targets) {
      targets = new Set();
      this.policyTargets.set(policyName, targets);
    }
    targets.add(target as string);
  }

  detachPolicy(policyName: string, target: string | undefined, propagationMs = 0): void {
    this.policy(policyName);
    if (!target) throw new IotError('InvalidRequestException', 'target is required');
    if (this.policyTargets.get(policyName)?.delete(target)) {
      this.propagate('policy', policyName, target, propagationMs);
    }
  }

  policiesOf(target: string): PolicyRecord[] {
    return [...this.policyTargets]
      .filter(([, targets]) => targets.has(target))
      .map(([policyName]) => this.policy(policyName));
  }

  // --- role aliases --------------------------------------------------------------------------
  createRoleAlias(
    roleAlias: string,
    roleArn: string | undefined,
    credentialDurationSeconds = 3600,
  ): RoleAliasRecord {
    assertPattern(ROLE_ALIAS, roleAlias, 'roleAlias');
    if (!roleArn || !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(roleArn)) {
      throw new IotError('InvalidRequestException', 'roleArn must be the ARN of an IAM role');
    }
    if (
      !Number.isInteger(credentialDurationSeconds) ||
      credentialDurationSeconds < 900 ||
      credentialDurationSeconds > 43200
    ) {
      throw new IotError(
        'InvalidRequestException',
        'credentialDurationSeconds must be between 900 and 43200',
      );
    }
    if (this.roleAliases.has(roleAlias)) {
      throw new IotError('ResourceAlreadyExistsException', `Role alias ${roleAlias} already exists`);
    }
    const now = new Date();
    const record = {
      roleAlias,
      roleAliasArn: this.arn(`rolealias/${roleAlias}`),
      roleArn,
      credentialDurationSeconds,
      owner: this.options.accountId,
      creationDate: now,
      lastModifiedDate: now,
    };
    this.roleAliases.set(roleAlias, record);
    return record;
  }

  roleAlias(roleAlias: string): RoleAliasRecord {
    const record = this.roleAliases.get(roleAlias);
    if (!record) throw new IotError('ResourceNotFoundException', `Role alias ${roleAlias} does not exist`);
    return record;
  }

  endpoint(endpointType: string | undefined): string {
    const type = endpointType ?? 'iot:Data';
    const address = this.options.endpoints[type];
    if (!address) throw new IotError('InvalidRequestException', `Unsupported endpointType ${type}`);
    return address;
  }
}

function assertPattern(pattern: RegExp, value: string, field: string): void {
  if (!pattern.test(value)) throw new IotError('InvalidRequestException', `${field} "${value}" is not valid`);
}

function assertPolicyDocument(document: string | undefined): void {
  let parsed: { Statement?: unknown } | undefined;
  try {
    parsed = JSON.parse(document ?? '') as { Statement?: unknown };
  } catch {
    throw new IotError('MalformedPolicyException', 'The policy document is not valid JSON');
  }
  if (!parsed || typeof parsed !== 'object' || parsed.Statement === undefined) {
    throw new IotError('MalformedPolicyException', 'The policy document has no Statement');
  }
}

function sameAttributes(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
