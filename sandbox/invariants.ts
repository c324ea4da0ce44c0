import { createHash, X509Certificate } from 'node:crypto';
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
 * - no registration is left PROVISIONING once its lease has lapsed (unless `allowStale`);
 * - rotations: a device holds at most its own certificate and a pending new one, both ACTIVE and
 *   attached to its thing; no rotation is left ISSUING or RETIRING, nor PENDING past its grace period
 *   (unless `allowStale`); a RESET device names no certificate.
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

  // The certificates a device holds: its own, and a rotation's new one while it waits for
  // confirmation (both work until then). A rotation's old one, while it is being retired, only
  // under allowStale.
  const heldBy = (device: DeviceRecord, stale = false): string[] => {
    const held = device.certificateId ? [device.certificateId] : [];
    const rotation = device.rotation;
    if (rotation?.certificateId && (rotation.state === 'PENDING' || stale)) held.push(rotation.certificateId);
    return held;
  };
  const activeDevicesByCertificate = new Map<string, DeviceRecord[]>();
  for (const device of devices.filter((d) => d.status === 'ACTIVE')) {
    for (const id of heldBy(device, options.allowStale)) {
      activeDevicesByCertificate.set(id, [...(activeDevicesByCertificate.get(id) ?? []), device]);
    }
  }
  const namedBy = new Map(
    devices.flatMap((d) => [
      [d.certificateId, d] as const,
      ...(d.rotation?.certificateId ? [[d.rotation.certificateId, d] as const] : []),
      ...(d.rotation?.superseded ? [[d.rotation.superseded.certificateId, d] as const] : []),
    ]),
  );
  for (const certificate of certificates.filter((c) => c.status === 'ACTIVE')) {
    const owners = activeDevicesByCertificate.get(certificate.certificateId as string) ?? [];
    const holder = namedBy.get(certificate.certificateId);
    const waiting =
      owners.length === 0 &&
      ((options.allowStale && (holder?.status === 'PROVISIONING' || holder?.rotation !== undefined)) ||
        (options.allowUnreferenced && !holder));
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

  // Pending rotations: the new certificate works as the old one does (ACTIVE, attached).
  for (const device of devices.filter((d) => d.status === 'ACTIVE' && d.rotation?.state === 'PENDING')) {
    const rotation = device.rotation as NonNullable<DeviceRecord['rotation']>;
    if (certificateStatus.get(rotation.certificateId) !== 'ACTIVE') {
      violations.push(
        `device ${device.serialNumber}'s new certificate ${rotation.certificateId} is ${certificateStatus.get(rotation.certificateId) ?? 'missing'}`,
      );
    }
    if (!(await principalsOf(device.thingName))?.includes(rotation.certificateArn as string)) {
      violations.push(`device ${device.serialNumber}: its new certificate is not attached to its thing`);
    }
    const policies = await stores.iot.send(
      new ListAttachedPoliciesCommand({ target: rotation.certificateArn }),
    );
    if (!policies.policies?.some((p) => p.policyName === stores.policyName)) {
      violations.push(
        `device ${device.serialNumber}: the device policy is not attached to its new certificate`,
      );
    }
    // A rotation belongs to the registration it started from: one older than the record's current
    // registration (a re-issue, a reset) would hand its identity to another key.
    if (Date.parse(rotation.startedAt) < Date.parse(device.activatedAt ?? '')) {
      violations.push(`device ${device.serialNumber}: its pending rotation is older than its registration`);
    }
    if (!options.allowStale && Date.parse(rotation.graceUntil ?? '') < now.getTime()) {
      violations.push(
        `device ${device.serialNumber}: its rotation's grace period ended and it is still pending`,
      );
    }
  }
  if (!options.allowStale) {
    for (const device of devices.filter((d) => d.rotation && d.rotation.state !== 'PENDING')) {
      violations.push(`device ${device.serialNumber}: rotation left ${device.rotation?.state}`);
    }
  }
  // Proofs are verified against the PEM a record keeps: it must be the certificate its id names, and
  // an ACTIVE record's key must be that certificate's.
  for (const device of devices) {
    const pairs = [
      [
        device.certificateId,
        device.certificatePem,
        device.status === 'ACTIVE' ? device.publicKeySha256 : undefined,
      ],
      [
        device.rotation?.certificateId,
        device.rotation?.certificatePem,
        device.rotation?.state === 'PENDING' ? device.rotation.publicKeySha256 : undefined,
      ],
    ] as const;
    for (const [id, pem, key] of pairs) {
      if (!id || !pem) continue;
      const certificate = new X509Certificate(pem);
      if (createHash('sha256').update(certificate.raw).digest('hex') !== id) {
        violations.push(
          `device ${device.serialNumber} keeps a certificate PEM that is not certificate ${id}`,
        );
      } else if (
        key &&
        publicKeySha256(certificate.publicKey.export({ type: 'spki', format: 'der' })) !== key
      ) {
        violations.push(
          `device ${device.serialNumber}: certificate ${id} is not for the key the record names`,
        );
      }
    }
  }
  for (const device of devices.filter((d) => d.status === 'RESET' && (d.certificateId || d.rotation))) {
    violations.push(`RESET device ${device.serialNumber} still names a certificate`);
  }

  const referenced = new Set(
    devices.flatMap((d) => [
      d.certificateId,
      d.rotation?.certificateId,
      d.rotation?.superseded?.certificateId,
    ]),
  );
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
  const namedArns = new Set(
    devices.flatMap((d) => [
      d.certificateArn,
      d.rotation?.certificateArn,
      d.rotation?.superseded?.certificateArn,
    ]),
  );
  for (const thing of things) {
    const owner = byProvisioningId.get(thing.attributes?.provisioningId as string);
    if (!owner) continue;
    const rotation = owner.rotation;
    // Its own certificate, a rotation's new one; under allowStale also one being retired or replaced.
    const own = new Set([
      owner.certificateArn,
      ...(rotation?.state === 'PENDING' || options.allowStale ? [rotation?.certificateArn] : []),
      ...(options.allowStale ? [rotation?.superseded?.certificateArn] : []),
    ]);
    for (const principal of (await principalsOf(thing.thingName as string)) ?? []) {
      if (own.has(principal)) continue;
      if (options.allowUnreferenced && !namedArns.has(principal)) continue;
      violations.push(
        `thing ${thing.thingName} has a certificate that is not ${owner.serialNumber}'s: ${principal}`,
      );
    }
  }

  for (const claim of claims) {
    // A reset device registered again with another claim still counts for its earlier ones.
    const registered = devices.reduce(
      (sum, d) =>
        sum +
        (d.tokenHash === claim.tokenHash ? 1 : 0) +
        (d.formerClaims ?? []).filter((former) => former === claim.tokenHash).length,
      0,
    );
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
