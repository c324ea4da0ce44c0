import { X509Certificate } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeCertificateCommand,
  type IoTClient,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
  paginateListCertificates,
  paginateListThings,
} from '@aws-sdk/client-iot';
import { DynamoDBDocumentClient, paginateScan } from '@aws-sdk/lib-dynamodb';
import { publicKeySha256 } from '../shared/csr/parse-csr.js';
import {
  type BatchItem,
  type Claim,
  type DeviceRecord,
  isDeviceRecord,
  type PublicKeyItem,
  type ThingNameItem,
} from '../shared/inventory/model.js';
import { LEASE_MS } from '../shared/registration/register-device.js';

export interface Stores {
  dynamo: DynamoDBClient;
  tables: { claims: string; devices: string; history: string };
  iot: IoTClient;
  policyName: string;
}

/**
 * Scans the inventory and AWS IoT (the sandbox's emulator) and lists every violation of what
 * registration promises, whatever failed on the way:
 * - every ACTIVE certificate belongs to exactly one ACTIVE device record (certificates are created
 *   ACTIVE: unless `allowStale`, when a paused or in-flight PROVISIONING record may hold one, or
 *   `allowUnreferenced`, when one no record names may wait for the sweep);
 * - every ACTIVE device has its certificate ACTIVE, attached to its thing and to the device policy
 *   (unless `allowStale`, for a device whose registration committed within the last lease, or noted an
 *   attachment pending: its retry re-attaches);
 * - every thing belongs to a device record (its provisioningId attribute matches one), and only that
 *   record's certificate is attached to it (unless `allowUnreferenced`, one no record names yet);
 * - a thing name belongs to one device record, and its reservation names that record's serial;
 * - a record never points at a certificate that no longer exists;
 * - every certificate this backend created (its public key is recorded) is referenced by a device
 *   record (unless `allowUnreferenced`: before the reconciler has run);
 * - every claim's spent uses equal the device records registered with it;
 * - no registration is left PROVISIONING once its lease has lapsed (unless `allowStale`).
 */
export async function checkInvariants(
  stores: Stores,
  options: { now?: Date; allowStale?: boolean; allowUnreferenced?: boolean } = {},
): Promise<string[]> {
  const now = options.now ?? new Date();
  const violations: string[] = [];
  const documents = DynamoDBDocumentClient.from(stores.dynamo);
  const items = await scanAll<DeviceRecord | ThingNameItem | PublicKeyItem>(documents, stores.tables.devices);
  const devices = items.filter((item): item is DeviceRecord => isDeviceRecord(item));
  const reservations = new Map(
    items.flatMap((item) => (item.kind === 'thing-name' ? [[item.thingName, item.owner] as const] : [])),
  );
  const recordedKeys = new Set(
    items.flatMap((item) => (item.kind === 'public-key' ? [item.publicKeySha256] : [])),
  );
  const claims = (await scanAll<Claim | BatchItem>(documents, stores.tables.claims)).filter(
    (item): item is Claim => !('kind' in item),
  );
  const certificates = [];
  for await (const page of paginateListCertificates({ client: stores.iot, pageSize: 250 }, {})) {
    certificates.push(...(page.certificates ?? []));
  }
  const things = [];
  for await (const page of paginateListThings({ client: stores.iot, pageSize: 250 }, {}))
    things.push(...(page.things ?? []));

  // Each thing's certificates, listed once for both checks that read them; undefined if unlisted.
  const listed = new Map<string, Promise<string[] | undefined>>();
  const principalsOf = (thingName: string) => {
    const principals =
      listed.get(thingName) ??
      stores.iot
        .send(new ListThingPrincipalsCommand({ thingName }))
        .then((out) => out.principals ?? [])
        .catch(() => undefined);
    listed.set(thingName, principals);
    return principals;
  };

  const activeDevicesByCertificate = new Map<string, DeviceRecord[]>();
  for (const device of devices.filter((d) => d.status === 'ACTIVE' && d.certificateId)) {
    const list = activeDevicesByCertificate.get(device.certificateId as string) ?? [];
    activeDevicesByCertificate.set(device.certificateId as string, [...list, device]);
  }
  const namedBy = new Map(devices.map((d) => [d.certificateId, d]));
  for (const certificate of certificates.filter((c) => c.status === 'ACTIVE')) {
    const owners = activeDevicesByCertificate.get(certificate.certificateId as string) ?? [];
    const holder = namedBy.get(certificate.certificateId);
    const waiting =
      owners.length === 0 &&
      ((options.allowStale && holder?.status === 'PROVISIONING') || (options.allowUnreferenced && !holder));
    if (owners.length !== 1 && !waiting) {
      violations.push(
        `ACTIVE certificate ${certificate.certificateId} belongs to ${owners.length} ACTIVE devices`,
      );
    }
  }

  const certificateStatus = new Map(certificates.map((c) => [c.certificateId, c.status]));
  for (const device of devices.filter((d) => d.status === 'ACTIVE')) {
    const id = device.certificateId as string;
    if (certificateStatus.get(id) !== 'ACTIVE') {
      violations.push(
        `ACTIVE device ${device.serialNumber} has certificate ${id} in state ${certificateStatus.get(id) ?? 'missing'}`,
      );
      continue;
    }
    const committedLately = now.getTime() - Date.parse(device.activatedAt ?? '') < LEASE_MS;
    if (options.allowStale && (device.attachmentsPending || committedLately)) continue;
    if (!(await principalsOf(device.thingName))?.includes(device.certificateArn as string)) {
      violations.push(
        `ACTIVE device ${device.serialNumber}: certificate not attached to thing ${device.thingName}`,
      );
    }
    const policies = await stores.iot.send(
      new ListAttachedPoliciesCommand({ target: device.certificateArn }),
    );
    if (!policies.policies?.some((p) => p.policyName === stores.policyName)) {
      violations.push(`ACTIVE device ${device.serialNumber}: device policy not attached to its certificate`);
    }
  }

  const byThingName = new Map<string, DeviceRecord[]>();
  for (const device of devices)
    byThingName.set(device.thingName, [...(byThingName.get(device.thingName) ?? []), device]);
  for (const [thingName, holders] of byThingName) {
    if (holders.length > 1) {
      violations.push(`thing name ${thingName} is held by ${holders.map((d) => d.serialNumber).join(', ')}`);
    }
    const owner = reservations.get(thingName);
    if (owner !== holders[0]?.serialNumber) {
      violations.push(
        `thing name ${thingName} is reserved for ${owner ?? 'nobody'}, held by ${holders[0]?.serialNumber}`,
      );
    }
  }

  const referenced = new Set(devices.map((d) => d.certificateId));
  for (const device of devices.filter((d) => d.certificateId && d.status !== 'PROVISIONING')) {
    if (!certificateStatus.has(device.certificateId)) {
      violations.push(
        `device ${device.serialNumber} points at certificate ${device.certificateId}, which does not exist`,
      );
    }
  }
  if (!options.allowUnreferenced) {
    for (const certificate of certificates.filter((c) => !referenced.has(c.certificateId))) {
      const described = await stores.iot.send(
        new DescribeCertificateCommand({ certificateId: certificate.certificateId }),
      );
      const pem = described.certificateDescription?.certificatePem as string;
      const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
      if (recordedKeys.has(publicKeySha256(spki))) {
        violations.push(
          `certificate ${certificate.certificateId} (${certificate.status}) was created by this backend and no record references it`,
        );
      }
    }
  }

  const provisioningIds = new Set(devices.map((d) => d.provisioningId));
  for (const thing of things) {
    if (!provisioningIds.has(thing.attributes?.provisioningId as string)) {
      violations.push(`thing ${thing.thingName} has no device record`);
    }
  }

  // Whoever holds a certificate attached to thing X is X: only X's own certificate is on X's thing
  // (before the reconciler, also a certificate no record names yet, which waits for it).
  const byProvisioningId = new Map(devices.map((d) => [d.provisioningId, d]));
  const namedArns = new Set(devices.flatMap((d) => (d.certificateArn ? [d.certificateArn] : [])));
  for (const thing of things) {
    const owner = byProvisioningId.get(thing.attributes?.provisioningId as string);
    if (!owner) continue;
    for (const principal of (await principalsOf(thing.thingName as string)) ?? []) {
      if (principal === owner.certificateArn) continue;
      if (options.allowUnreferenced && !namedArns.has(principal)) continue;
      violations.push(
        `thing ${thing.thingName} has a certificate that is not ${owner.serialNumber}'s: ${principal}`,
      );
    }
  }

  for (const claim of claims) {
    const registered = devices.filter((d) => d.tokenHash === claim.tokenHash).length;
    if (claim.maxUses - claim.usesLeft !== registered) {
      violations.push(
        `claim ${claim.claimId}: ${claim.maxUses - claim.usesLeft} uses spent, ${registered} devices registered`,
      );
    }
  }

  if (!options.allowStale) {
    for (const device of devices.filter((d) => d.status === 'PROVISIONING' && d.leaseUntil < now.getTime())) {
      violations.push(`device ${device.serialNumber} is stuck PROVISIONING past its lease`);
    }
  }
  return violations;
}

async function scanAll<T>(documents: DynamoDBDocumentClient, table: string): Promise<T[]> {
  const items: T[] = [];
  for await (const page of paginateScan({ client: documents }, { TableName: table, ConsistentRead: true })) {
    items.push(...((page.Items ?? []) as T[]));
  }
  return items;
}
