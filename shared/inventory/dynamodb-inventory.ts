import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { epochSeconds } from '../claims/claim-rules.js';
import { RegistrationConflictError } from '../errors.js';
import { DEVICE_ACTOR, type HistoryEntry, historyPuts } from '../history/history.js';
import { CURSOR_KEYS, decodeCursor, encodeCursor } from './cursor.js';
import { guardDynamoDb as call, ifConditionHolds } from './dynamodb-errors.js';
import {
  type Inventory,
  type IssuedCertificate,
  type Rejections,
  ReservationRejectedError,
} from './inventory.js';
import {
  type Claim,
  type DeviceRecord,
  devicesCounter,
  type Failure,
  type PendingAttachments,
  type Progress,
  type PublicKeyItem,
  publicKeyKey,
  SERVER_KEYGEN,
  type ThingNameItem,
  thingNameKey,
  usedCounter,
} from './model.js';
import {
  type BatchChange,
  batchUpdate,
  ownedUpdate,
  type TransactItem,
  TransactionRefusedError,
  writeTransaction,
} from './transactions.js';

export interface TableNames {
  claims: string;
  devices: string;
  /** Each device's append-only history (shared/history/history.ts). */
  history: string;
}

/** Inventory on DynamoDB: claims keyed by token hash, devices keyed by serial number. */
export class DynamoDbInventory implements Inventory {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tables: TableNames,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async getClaim(tokenHash: string): Promise<Claim | undefined> {
    const out = await call(() =>
      this.doc.send(
        new GetCommand({ TableName: this.tables.claims, Key: { tokenHash }, ConsistentRead: true }),
      ),
    );
    return out.Item as Claim | undefined;
  }

  async getDevice(serialNumber: string): Promise<DeviceRecord | undefined> {
    const out = await call(() =>
      this.doc.send(
        new GetCommand({ TableName: this.tables.devices, Key: { serialNumber }, ConsistentRead: true }),
      ),
    );
    return out.Item as DeviceRecord | undefined;
  }

  async reserve(claim: Claim, device: DeviceRecord, now: Date): Promise<void> {
    const [spend, batch] = this.spendOne(claim, device, now);
    const create: TransactItem = {
      Put: {
        TableName: this.tables.devices,
        Item: device,
        ConditionExpression: 'attribute_not_exists(serialNumber)',
      },
    };
    const thingName: ThingNameItem = {
      serialNumber: thingNameKey(device.thingName),
      kind: 'thing-name',
      thingName: device.thingName,
      owner: device.serialNumber,
      createdAt: now.toISOString(),
    };
    await this.transact(
      [spend, create, this.ownedBy(thingName), this.ownedBy(publicKeyItem(device, now)), batch],
      ['claim', 'device', 'thingName', 'publicKey', 'batch'],
    );
  }

  async reRegister(claim: Claim, previous: DeviceRecord, next: DeviceRecord, now: Date): Promise<void> {
    const [spend, batch] = this.spendOne(claim, next, now);
    const { serialNumber, ...fields } = next;
    const entries = Object.entries(fields);
    const restart: TransactItem = {
      Update: {
        TableName: this.tables.devices,
        Key: { serialNumber },
        UpdateExpression: `SET ${entries.map((_, i) => `#f${i} = :f${i}`).join(', ')}`,
        // Still RESET as read: nobody else started its new registration meanwhile.
        ConditionExpression: '#status = :reset AND leaseId = :previousLease AND leaseUntil < :nowMs',
        ExpressionAttributeNames: {
          '#status': 'status',
          ...Object.fromEntries(entries.map(([name], i) => [`#f${i}`, name])),
        },
        ExpressionAttributeValues: {
          ':reset': 'RESET',
          ':previousLease': previous.leaseId,
          ':nowMs': now.getTime(),
          ...Object.fromEntries(entries.map(([, value], i) => [`:f${i}`, value])),
        },
      },
    };
    await this.transact(
      [spend, restart, this.ownedBy(publicKeyItem(next, now)), batch],
      ['claim', 'device', 'publicKey', 'batch'],
    );
  }

  /**
   * The claim's part of a registration's transaction: one use spent under the claim rules, and its
   * batch item (not revoked; the token's first use counted).
   */
  private spendOne(claim: Claim, device: DeviceRecord, now: Date): [TransactItem, TransactItem] {
    const spend: TransactItem = {
      Update: {
        TableName: this.tables.claims,
        Key: { tokenHash: claim.tokenHash },
        UpdateExpression: 'SET usesLeft = usesLeft - :one, lastUsedAt = :nowIso',
        ConditionExpression: `${claimStillValid(device.csrSha256)} AND usesLeft > :zero`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ...claimValues(device, now),
          ':one': 1,
          ':zero': 0,
          ':nowIso': now.toISOString(),
        },
      },
    };
    // A token's first use counts it as used in its batch (for multi-use tokens, as far as this read saw).
    const firstUse = claim.usesLeft === claim.maxUses;
    // Counted only if it really is the first use: a stale read is refused, and explained as a conflict.
    if (firstUse) {
      const update = spend.Update as NonNullable<TransactItem['Update']>;
      update.ConditionExpression = `${update.ConditionExpression} AND usesLeft = maxUses`;
    }
    const batch = this.batchUpdate(claim.batchId, {
      mustBeActive: true,
      ...(firstUse ? { add: { [usedCounter(claim.expiresAt)]: 1 } } : {}),
    });
    return [spend, batch];
  }

  async takeOver(
    previous: DeviceRecord,
    next: DeviceRecord,
    now: Date,
    options: { singleUseClaim: boolean },
  ): Promise<void> {
    const claimCheck: TransactItem = {
      ConditionCheck: {
        TableName: this.tables.claims,
        Key: { tokenHash: next.tokenHash },
        ConditionExpression: `${claimStillValid(next.csrSha256)}${options.singleUseClaim ? ' AND maxUses = :one' : ''}`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ...claimValues(next, now),
          ...(options.singleUseClaim ? { ':one': 1 } : {}),
        },
      },
    };
    const history = previous.failure
      ? [
          {
            leaseId: previous.leaseId,
            failure: previous.failure,
            ...(previous.certificateId ? { certificateId: previous.certificateId } : {}),
          },
        ]
      : [];
    const takeOver: TransactItem = {
      Update: {
        TableName: this.tables.devices,
        Key: { serialNumber: next.serialNumber },
        UpdateExpression:
          'SET #status = :provisioning, leaseId = :lease, leaseUntil = :leaseUntil, csrSha256 = :csr, ' +
          'publicKeySha256 = :key, attributes = :attributes, updatedAt = :now, ' +
          'failures = list_append(if_not_exists(failures, :none), :history) REMOVE failure',
        // Only the same claim, and only a record no live attempt holds and nobody changed since the
        // saga read it (every take-over changes leaseId), so the saga's identity rule holds.
        ConditionExpression:
          'tokenHash = :tokenHash AND provisioningId = :pid AND leaseId = :previousLease AND ' +
          'leaseUntil < :nowMs AND (#status IN (:failed, :provisioning) OR ' +
          '(#status = :active AND csrSha256 = :keygen AND attribute_not_exists(rotation) AND ' +
          'attribute_not_exists(rotatedAt)))',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':provisioning': 'PROVISIONING',
          ':failed': 'FAILED',
          ':active': 'ACTIVE',
          ':keygen': SERVER_KEYGEN,
          ':tokenHash': next.tokenHash,
          ':pid': previous.provisioningId,
          ':previousLease': previous.leaseId,
          ':lease': next.leaseId,
          ':leaseUntil': next.leaseUntil,
          ':nowMs': now.getTime(),
          ':csr': next.csrSha256,
          ':key': next.publicKeySha256,
          ':attributes': next.attributes,
          ':now': now.toISOString(),
          ':none': [],
          ':history': history,
        },
      },
    };
    // The record leaves FAILED or ACTIVE (a server-key re-issue): its batch counts one fewer there.
    const leaving =
      previous.status === 'FAILED' || previous.status === 'ACTIVE' ? previous.status : undefined;
    const batch = this.batchUpdate(previous.batchId, {
      mustBeActive: true,
      ...(leaving ? { add: { [devicesCounter(leaving)]: -1 } } : {}),
    });
    await this.transact(
      [claimCheck, takeOver, this.ownedBy(publicKeyItem(next, now)), batch],
      ['claim', 'device', 'publicKey', 'batch'],
    );
  }

  private ownedBy(item: ThingNameItem | PublicKeyItem): TransactItem {
    return { Update: ownedUpdate(this.tables.devices, item) };
  }

  async pause(
    device: DeviceRecord,
    certificate: IssuedCertificate | undefined,
    progress: Progress,
    now: Date,
  ): Promise<void> {
    const values = { ':progress': progress, ':now': now.toISOString(), ':released': 0 };
    const base = 'SET progress = :progress, updatedAt = :now, leaseUntil = :released';
    await this.updateOwn(
      device,
      certificate ? `${base}, certificateId = :id, certificateArn = :arn, certificatePem = :pem` : base,
      certificate
        ? {
            ...values,
            ':id': certificate.certificateId,
            ':arn': certificate.certificateArn,
            ':pem': certificate.certificatePem,
          }
        : values,
    );
  }

  async complete(
    device: DeviceRecord,
    certificate: IssuedCertificate,
    progress: Progress,
    now: Date,
  ): Promise<void> {
    await this.updateOwnCounting(
      device,
      // leaseUntil 0: the attempt is over, the record free for the next holder (a re-issue, an operator).
      'SET #status = :active, certificateId = :id, certificateArn = :arn, certificatePem = :pem, ' +
        'progress = :progress, updatedAt = :now, activatedAt = :now, ' +
        'firstActivatedAt = if_not_exists(firstActivatedAt, :now), leaseUntil = :released ' +
        // A note about an earlier certificate (a re-issue of a server-generated key) is over.
        'REMOVE attachmentsPending',
      {
        ':active': 'ACTIVE',
        ':id': certificate.certificateId,
        ':arn': certificate.certificateArn,
        ':pem': certificate.certificatePem,
        ':progress': progress,
        ':now': now.toISOString(),
        ':released': 0,
      },
      { add: { [devicesCounter('ACTIVE')]: 1 }, registeredAt: now },
      this.history(device, now, [
        {
          event: 'REGISTERED',
          actor: DEVICE_ACTOR,
          certificateId: certificate.certificateId,
          claimId: device.claimId,
          batchId: device.batchId,
        },
      ]),
    );
  }

  async fence(device: DeviceRecord, leaseId: string): Promise<boolean> {
    const own = this.ownUpdate(device, 'SET leaseId = :fence', { ':fence': leaseId });
    return ifConditionHolds(() => this.doc.send(new UpdateCommand(own)));
  }

  async noteAttachments(device: DeviceRecord, pending: PendingAttachments | undefined): Promise<void> {
    // Only on the record as this registration left it: never on a later attempt's or certificate.
    await ifConditionHolds(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.devices,
          Key: { serialNumber: device.serialNumber },
          UpdateExpression: pending ? 'SET attachmentsPending = :pending' : 'REMOVE attachmentsPending',
          ConditionExpression: '#status = :active AND certificateId = :id',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':active': 'ACTIVE',
            ':id': device.certificateId,
            ...(pending ? { ':pending': pending } : {}),
          },
        }),
      ),
    );
  }

  async isCertificateReferenced(certificateId: string): Promise<boolean> {
    const out = await call(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tables.devices,
          IndexName: 'byCertificate',
          KeyConditionExpression: 'certificateId = :id',
          ExpressionAttributeValues: { ':id': certificateId },
          Limit: 1,
        }),
      ),
    );
    return (out.Items?.length ?? 0) > 0;
  }

  async publicKeyRecord(sha256: string): Promise<PublicKeyItem | undefined> {
    const out = await call(() =>
      this.doc.send(
        new GetCommand({
          TableName: this.tables.devices,
          Key: { serialNumber: publicKeyKey(sha256) },
          ConsistentRead: true,
        }),
      ),
    );
    return out.Item as PublicKeyItem | undefined;
  }

  async listForReconcile(
    status: 'PROVISIONING' | 'FAILED',
    updatedBefore: Date,
    limit: number,
    cursor?: string,
  ): Promise<{ devices: DeviceRecord[]; cursor?: string }> {
    const out = await call(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tables.devices,
          IndexName: 'byStatus',
          KeyConditionExpression: '#status = :status AND updatedAt < :before',
          ...(status === 'FAILED' ? { FilterExpression: 'failure.#rollback = :incomplete' } : {}),
          ExpressionAttributeNames: {
            '#status': 'status',
            ...(status === 'FAILED' ? { '#rollback': 'rollback' } : {}),
          },
          ExpressionAttributeValues: {
            ':status': status,
            ':before': updatedBefore.toISOString(),
            ...(status === 'FAILED' ? { ':incomplete': 'INCOMPLETE' } : {}),
          },
          Limit: limit,
          ...(cursor ? { ExclusiveStartKey: decodeCursor(cursor, CURSOR_KEYS.devicesByStatus) } : {}),
        }),
      ),
    );
    const next = encodeCursor(out.LastEvaluatedKey);
    return { devices: (out.Items ?? []) as DeviceRecord[], ...(next ? { cursor: next } : {}) };
  }

  async takeForReconcile(previous: DeviceRecord, next: DeviceRecord, now: Date): Promise<boolean> {
    const take = {
      TableName: this.tables.devices,
      Key: { serialNumber: previous.serialNumber },
      UpdateExpression:
        'SET #status = :provisioning, leaseId = :lease, leaseUntil = :leaseUntil, updatedAt = :now',
      ConditionExpression:
        // Or already taken by this very run (its first try landed, the answer was lost).
        'leaseId = :lease OR (leaseId = :previousLease AND leaseUntil < :nowMs AND (#status = :provisioning OR ' +
        '(#status = :failed AND failure.#rollback = :incomplete)))',
      ExpressionAttributeNames: { '#status': 'status', '#rollback': 'rollback' },
      ExpressionAttributeValues: {
        ':provisioning': 'PROVISIONING',
        ':failed': 'FAILED',
        ':incomplete': 'INCOMPLETE',
        ':previousLease': previous.leaseId,
        ':lease': next.leaseId,
        ':leaseUntil': next.leaseUntil,
        ':nowMs': now.getTime(),
        ':now': now.toISOString(),
      },
    };
    try {
      if (previous.status === 'FAILED') {
        // It is counted FAILED again when the reconciler records the outcome.
        await this.transact(
          [{ Update: take }, this.batchUpdate(previous.batchId, { add: { [devicesCounter('FAILED')]: -1 } })],
          ['device', 'batch'],
        );
      } else {
        await call(() => this.doc.send(new UpdateCommand(take)));
      }
      return true;
    } catch (error) {
      if (error instanceof ReservationRejectedError) return false;
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  async markFailed(
    device: DeviceRecord,
    progress: Progress,
    failure: Failure,
    now: Date,
    certificate?: IssuedCertificate,
    actor: string = DEVICE_ACTOR,
  ): Promise<void> {
    const history = this.history(device, now, [
      {
        event: 'FAILED',
        actor,
        step: failure.step,
        error: failure.error,
        ...(failure.certificateId ? { certificateId: failure.certificateId } : {}),
      },
      { event: 'ROLLED_BACK', actor, rollback: failure.rollback, leftovers: failure.leftovers },
    ]);
    const base =
      'SET #status = :failedStatus, progress = :progress, failure = :failure, updatedAt = :now, leaseUntil = :released';
    const values = {
      ':failedStatus': 'FAILED',
      ':progress': progress,
      ':failure': failure,
      ':now': now.toISOString(),
      ':released': 0,
    };
    const counting = { add: { [devicesCounter('FAILED')]: 1 } };
    if (progress.certificate && certificate) {
      await this.updateOwnCounting(
        device,
        `${base}, certificateId = :id, certificateArn = :arn, certificatePem = :pem`,
        {
          ...values,
          ':id': certificate.certificateId,
          ':arn': certificate.certificateArn,
          ':pem': certificate.certificatePem,
        },
        counting,
        history,
      );
    } else {
      await this.updateOwnCounting(
        device,
        `${base} REMOVE certificateId, certificateArn, certificatePem`,
        values,
        counting,
        history,
      );
    }
  }

  /** Updates the record only while this attempt holds its lease. */
  private async updateOwn(
    device: DeviceRecord,
    expression: string,
    values: Record<string, unknown>,
  ): Promise<void> {
    if (
      !(await ifConditionHolds(() =>
        this.doc.send(new UpdateCommand(this.ownUpdate(device, expression, values))),
      ))
    ) {
      throw lostLease();
    }
  }

  /** The same update, with the device's batch counters changed in one transaction. */
  private async updateOwnCounting(
    device: DeviceRecord,
    expression: string,
    values: Record<string, unknown>,
    batch: BatchChange,
    history: TransactItem[] = [],
  ): Promise<void> {
    try {
      await writeTransaction(this.doc, [
        { Update: this.ownUpdate(device, expression, values) },
        this.batchUpdate(device.batchId, batch),
        ...history,
      ]);
    } catch (error) {
      if (error instanceof TransactionRefusedError) throw lostLease(error);
      throw error;
    }
  }

  private ownUpdate(device: DeviceRecord, expression: string, values: Record<string, unknown>) {
    return {
      TableName: this.tables.devices,
      Key: { serialNumber: device.serialNumber },
      UpdateExpression: expression,
      // The attempt that holds the lease, and only while it is PROVISIONING: a slow attempt whose
      // lease was taken over can no longer write.
      ConditionExpression: '#status = :provisioningStatus AND provisioningId = :pid AND leaseId = :ownLease',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ...values,
        ':provisioningStatus': 'PROVISIONING',
        ':pid': device.provisioningId,
        ':ownLease': device.leaseId,
      },
    };
  }

  /** Runs a transaction; `parts` names each item, to say which condition refused it. */
  private async transact(items: TransactItem[], parts: (keyof Rejections)[]): Promise<void> {
    try {
      await writeTransaction(this.doc, items);
    } catch (error) {
      if (!(error instanceof TransactionRefusedError)) throw error;
      throw new ReservationRejectedError(
        Object.fromEntries(parts.map((part, i) => [part, error.reasons[i] === 'ConditionalCheckFailed'])),
      );
    }
  }

  private batchUpdate(batchId: string, change: BatchChange): TransactItem {
    return batchUpdate(this.tables.claims, batchId, change);
  }

  private history(device: DeviceRecord, now: Date, entries: HistoryEntry[]): TransactItem[] {
    return historyPuts(this.tables.history, device.serialNumber, now, entries);
  }
}

/**
 * An attempt's write refused: another attempt (or the reconciler) holds the record now, or the write
 * kept colliding with others on the batch item. The device may retry.
 */
function lostLease(cause?: unknown): RegistrationConflictError {
  return new RegistrationConflictError('this registration changed meanwhile; retry', {
    retryAfterSeconds: 1,
    ...(cause ? { cause } : {}),
  });
}

/** The claim rules of shared/claims/claim-rules.ts, as a condition DynamoDB enforces atomically. */
function claimStillValid(csrSha256: string): string {
  const keygen = csrSha256 === SERVER_KEYGEN ? ' AND allowServerKeygen = :yes' : '';
  return (
    'attribute_exists(tokenHash) AND #status = :claimActive AND expiresAt > :nowEpoch ' +
    `AND (attribute_not_exists(serialNumber) OR serialNumber = :serial)${keygen}`
  );
}

function publicKeyItem(device: DeviceRecord, now: Date): PublicKeyItem {
  return {
    serialNumber: publicKeyKey(device.publicKeySha256),
    kind: 'public-key',
    publicKeySha256: device.publicKeySha256,
    owner: device.serialNumber,
    createdAt: now.toISOString(),
    lastAttemptAt: now.toISOString(),
  };
}

function claimValues(device: DeviceRecord, now: Date): Record<string, unknown> {
  return {
    ':claimActive': 'ACTIVE',
    ':nowEpoch': epochSeconds(now),
    ':serial': device.serialNumber,
    ...(device.csrSha256 === SERVER_KEYGEN ? { ':yes': true } : {}),
  };
}
