import { type DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { epochSeconds } from '../claims/claim-rules.js';
import { ThrottledError } from '../errors.js';
import { CURSOR_KEYS, decodeCursor, encodeCursor } from './cursor.js';
import { guardDynamoDb as call } from './dynamodb-errors.js';
import {
  type Inventory,
  type IssuedCertificate,
  type Rejections,
  ReservationRejectedError,
} from './inventory.js';
import {
  type Claim,
  type DeviceRecord,
  type Failure,
  type Progress,
  type PublicKeyItem,
  publicKeyKey,
  SERVER_KEYGEN,
  type ThingNameItem,
  thingNameKey,
} from './model.js';

export interface TableNames {
  claims: string;
  devices: string;
}

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

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
      [spend, create, this.ownedBy(thingName), this.ownedBy(publicKeyItem(device, now))],
      ['claim', 'device', 'thingName', 'publicKey'],
    );
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
          '(#status = :failed OR (#status = :provisioning AND leaseUntil < :nowMs) OR ' +
          '(#status = :active AND csrSha256 = :keygen))',
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
    await this.transact(
      [claimCheck, takeOver, this.ownedBy(publicKeyItem(next, now))],
      ['claim', 'device', 'publicKey'],
    );
  }

  /**
   * Creates an item that belongs to one owner for good, or touches it again for the same owner
   * (keeping its createdAt); refused if another owner holds it.
   */
  private ownedBy(item: ThingNameItem | PublicKeyItem): TransactItem {
    const { serialNumber, createdAt, ...fields } = item;
    const entries = Object.entries(fields);
    return {
      Update: {
        TableName: this.tables.devices,
        Key: { serialNumber },
        UpdateExpression: `SET ${entries.map((_, i) => `#f${i} = :f${i}`).join(', ')}, createdAt = if_not_exists(createdAt, :createdAt)`,
        ConditionExpression: 'attribute_not_exists(serialNumber) OR #owner = :owner',
        ExpressionAttributeNames: {
          '#owner': 'owner',
          ...Object.fromEntries(entries.map(([name], i) => [`#f${i}`, name])),
        },
        ExpressionAttributeValues: {
          ':owner': item.owner,
          ':createdAt': createdAt,
          ...Object.fromEntries(entries.map(([, value], i) => [`:f${i}`, value])),
        },
      },
    };
  }

  async recordCertificate(
    device: DeviceRecord,
    certificate: IssuedCertificate,
    progress: Progress,
    now: Date,
  ): Promise<void> {
    await this.updateOwn(
      device,
      'SET certificateId = :id, certificateArn = :arn, certificatePem = :pem, progress = :progress, updatedAt = :now',
      {
        ':id': certificate.certificateId,
        ':arn': certificate.certificateArn,
        ':pem': certificate.certificatePem,
        ':progress': progress,
        ':now': now.toISOString(),
      },
    );
  }

  async markActive(device: DeviceRecord, progress: Progress, now: Date): Promise<void> {
    await this.updateOwn(
      device,
      'SET #status = :active, progress = :progress, updatedAt = :now, activatedAt = :now',
      {
        ':active': 'ACTIVE',
        ':progress': progress,
        ':now': now.toISOString(),
      },
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

  async publicKeyOwner(sha256: string): Promise<string | undefined> {
    const out = await call(() =>
      this.doc.send(
        new GetCommand({
          TableName: this.tables.devices,
          Key: { serialNumber: publicKeyKey(sha256) },
          ConsistentRead: true,
        }),
      ),
    );
    return (out.Item as PublicKeyItem | undefined)?.owner;
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
    try {
      await call(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tables.devices,
            Key: { serialNumber: previous.serialNumber },
            UpdateExpression:
              'SET #status = :provisioning, leaseId = :lease, leaseUntil = :leaseUntil, updatedAt = :now',
            ConditionExpression:
              'leaseId = :previousLease AND ((#status = :provisioning AND leaseUntil < :nowMs) OR ' +
              '(#status = :failed AND failure.#rollback = :incomplete))',
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
          }),
        ),
      );
      return true;
    } catch (error) {
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
  ): Promise<void> {
    const base = 'SET #status = :failedStatus, progress = :progress, failure = :failure, updatedAt = :now';
    const values = {
      ':failedStatus': 'FAILED',
      ':progress': progress,
      ':failure': failure,
      ':now': now.toISOString(),
    };
    if (progress.certificate && certificate) {
      await this.updateOwn(
        device,
        `${base}, certificateId = :id, certificateArn = :arn, certificatePem = :pem`,
        {
          ...values,
          ':id': certificate.certificateId,
          ':arn': certificate.certificateArn,
          ':pem': certificate.certificatePem,
        },
      );
    } else {
      await this.updateOwn(device, `${base} REMOVE certificateId, certificateArn, certificatePem`, values);
    }
  }

  /** Updates the record only while this attempt holds its lease. */
  private async updateOwn(
    device: DeviceRecord,
    expression: string,
    values: Record<string, unknown>,
  ): Promise<void> {
    await call(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.devices,
          Key: { serialNumber: device.serialNumber },
          UpdateExpression: expression,
          ConditionExpression: '#status = :provisioningStatus AND provisioningId = :pid',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ...values,
            ':provisioningStatus': 'PROVISIONING',
            ':pid': device.provisioningId,
          },
        }),
      ),
    );
  }

  /** Runs a transaction; `parts` names each item, to say which condition refused it. */
  private async transact(items: TransactItem[], parts: (keyof Rejections)[]): Promise<void> {
    try {
      await call(() => this.doc.send(new TransactWriteCommand({ TransactItems: items })));
    } catch (error) {
      if (error instanceof TransactionCanceledException) {
        const reasons = (error.CancellationReasons ?? []).map((reason) => reason.Code);
        const throttled = reasons.some(
          (code) => code === 'ThrottlingError' || code === 'ProvisionedThroughputExceeded',
        );
        if (throttled)
          throw new ThrottledError('the inventory is throttling', { retryAfterSeconds: 1, cause: error });
        throw new ReservationRejectedError(
          Object.fromEntries(parts.map((part, i) => [part, reasons[i] === 'ConditionalCheckFailed'])),
        );
      }
      throw error;
    }
  }
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
