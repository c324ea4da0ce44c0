import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { epochSeconds } from '../claims/claim-rules.js';
import { type HistoryEntry, historyPuts } from '../history/history.js';
import { CURSOR_KEYS, decodeCursor, encodeCursor } from '../inventory/cursor.js';
import { guardDynamoDb as call, ifConditionHolds } from '../inventory/dynamodb-errors.js';
import type { TableNames } from '../inventory/dynamodb-inventory.js';
import { releaseLease } from '../inventory/leases.js';
import {
  type BatchItem,
  batchKey,
  type DeviceRecord,
  type PublicKeyItem,
  publicKeyKey,
  type Rotation,
} from '../inventory/model.js';
import {
  ifTransactionHolds,
  ownedUpdate,
  type TransactItem,
  TransactionRefusedError,
  writeTransaction,
} from '../inventory/transactions.js';
import { PROOF_WINDOW_SECONDS } from './device-proof.js';
import { type Lease, RotationRejectedError, type RotationStore } from './rotation-store.js';

/** Rotation on the devices table; nonces in the claims table (TTL), history in its own table. */
export class DynamoDbRotationStore implements RotationStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tables: TableNames,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async getDevice(serialNumber: string): Promise<DeviceRecord | undefined> {
    const out = await call(() =>
      this.doc.send(
        new GetCommand({ TableName: this.tables.devices, Key: { serialNumber }, ConsistentRead: true }),
      ),
    );
    return out.Item as DeviceRecord | undefined;
  }

  async getBatch(batchId: string): Promise<BatchItem | undefined> {
    const out = await call(() =>
      this.doc.send(new GetCommand({ TableName: this.tables.claims, Key: { tokenHash: batchKey(batchId) } })),
    );
    return out.Item as BatchItem | undefined;
  }

  async beginRotation(
    device: DeviceRecord,
    rotation: Rotation,
    lease: Lease,
    nonceKey: string,
    now: Date,
  ): Promise<void> {
    const begin: TransactItem = {
      Update: {
        TableName: this.tables.devices,
        Key: { serialNumber: device.serialNumber },
        UpdateExpression:
          'SET rotation = :rotation, rotationState = :state, rotationDueAt = :due, leaseId = :lease, ' +
          'leaseUntil = :until, updatedAt = :now',
        // Nobody holds it, it still has the certificate the proof was verified against, and the
        // rotation it had when read (none, or one being replaced).
        ConditionExpression:
          '#status = :active AND certificateId = :current AND leaseId = :previousLease AND leaseUntil < :nowMs AND ' +
          (device.rotation ? 'rotation.rotationId = :previousRotation' : 'attribute_not_exists(rotation)'),
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':rotation': rotation,
          ':state': rotation.state,
          ':due': new Date(lease.leaseUntil).toISOString(),
          ':lease': lease.leaseId,
          ':until': lease.leaseUntil,
          ':now': now.toISOString(),
          ':active': 'ACTIVE',
          ':current': device.certificateId,
          ':previousLease': device.leaseId,
          ':nowMs': now.getTime(),
          ...(device.rotation ? { ':previousRotation': device.rotation.rotationId } : {}),
        },
      },
    };
    const key: PublicKeyItem = {
      serialNumber: publicKeyKey(rotation.publicKeySha256),
      kind: 'public-key',
      publicKeySha256: rotation.publicKeySha256,
      owner: device.serialNumber,
      createdAt: now.toISOString(),
      lastAttemptAt: now.toISOString(),
    };
    try {
      await writeTransaction(this.doc, [
        begin,
        this.noncePut(nonceKey, now),
        { Update: ownedUpdate(this.tables.devices, key) },
      ]);
    } catch (error) {
      if (!(error instanceof TransactionRefusedError)) throw error;
      const [device, nonce, publicKey] = error.reasons.map((reason) => reason === 'ConditionalCheckFailed');
      throw new RotationRejectedError({
        device: device ?? false,
        nonce: nonce ?? false,
        publicKey: publicKey ?? false,
      });
    }
  }

  async commitRotation(held: DeviceRecord, rotation: Rotation, now: Date): Promise<void> {
    await writeTransaction(this.doc, [
      this.heldUpdate(
        held,
        'ISSUING',
        'SET rotation = :rotation, rotationState = :next, rotationDueAt = :due, leaseUntil = :released, updatedAt = :now',
        {
          ':rotation': rotation,
          ':next': rotation.state,
          ':due': rotation.graceUntil,
          ':released': 0,
          ':now': now.toISOString(),
        },
      ),
      ...this.history(held, now, [
        {
          event: 'ROTATED',
          actor: 'device',
          ...(rotation.certificateId ? { certificateId: rotation.certificateId } : {}),
          ...(held.certificateId ? { previousCertificateId: held.certificateId } : {}),
        },
      ]),
    ]);
  }

  async abandonRotation(
    held: DeviceRecord,
    entry: HistoryEntry,
    now: Date,
    state: 'ISSUING' | 'PENDING' = 'ISSUING',
  ): Promise<boolean> {
    return ifTransactionHolds(this.doc, [
      this.heldUpdate(
        held,
        state,
        'SET leaseUntil = :released, updatedAt = :now REMOVE rotation, rotationState, rotationDueAt',
        { ':released': 0, ':now': now.toISOString() },
      ),
      ...this.history(held, now, [entry]),
    ]);
  }

  async promote(
    device: DeviceRecord,
    lease: Lease,
    entry: HistoryEntry,
    now: Date,
    nonceKey?: string,
  ): Promise<void> {
    const rotation = device.rotation as Rotation;
    const { graceUntil: _grace, ...rest } = rotation;
    // The old certificate waits in the rotation for its retirement.
    const retiring: Rotation = {
      ...rest,
      state: 'RETIRING',
      ...(device.certificateId ? { certificateId: device.certificateId } : {}),
      ...(device.certificateArn ? { certificateArn: device.certificateArn } : {}),
      ...(device.certificatePem ? { certificatePem: device.certificatePem } : {}),
    };
    const promote: TransactItem = {
      Update: {
        TableName: this.tables.devices,
        Key: { serialNumber: device.serialNumber },
        UpdateExpression:
          'SET certificateId = :id, certificateArn = :arn, certificatePem = :pem, publicKeySha256 = :key, ' +
          'csrSha256 = :csr, rotation = :retiring, rotationState = :state, rotationDueAt = :due, ' +
          'leaseId = :lease, leaseUntil = :until, rotatedAt = :now, updatedAt = :now ' +
          'REMOVE rotationRequestedAt, attachmentsPending',
        ConditionExpression:
          '#status = :active AND rotation.rotationId = :rid AND rotation.#state = :pending AND ' +
          'rotation.certificateId = :id AND leaseId = :previousLease AND leaseUntil < :nowMs',
        ExpressionAttributeNames: { '#status': 'status', '#state': 'state' },
        ExpressionAttributeValues: {
          ':id': rotation.certificateId,
          ':arn': rotation.certificateArn,
          ':pem': rotation.certificatePem,
          ':key': rotation.publicKeySha256,
          ':csr': rotation.csrSha256,
          ':retiring': retiring,
          ':state': 'RETIRING',
          ':due': new Date(lease.leaseUntil).toISOString(),
          ':lease': lease.leaseId,
          ':until': lease.leaseUntil,
          ':now': now.toISOString(),
          ':active': 'ACTIVE',
          ':rid': rotation.rotationId,
          ':pending': 'PENDING',
          ':previousLease': device.leaseId,
          ':nowMs': now.getTime(),
        },
      },
    };
    try {
      await writeTransaction(this.doc, [
        promote,
        ...(nonceKey ? [this.noncePut(nonceKey, now)] : []),
        ...this.history(device, now, [entry]),
      ]);
    } catch (error) {
      if (!(error instanceof TransactionRefusedError)) throw error;
      throw new RotationRejectedError({
        device: error.reasons[0] === 'ConditionalCheckFailed',
        nonce: nonceKey !== undefined && error.reasons[1] === 'ConditionalCheckFailed',
        publicKey: false,
      });
    }
  }

  async finishRetirement(held: DeviceRecord, entry: HistoryEntry, now: Date): Promise<boolean> {
    return ifTransactionHolds(this.doc, [
      this.heldUpdate(
        held,
        'RETIRING',
        'SET leaseUntil = :released, updatedAt = :now, previousCertificateId = :old ' +
          'REMOVE rotation, rotationState, rotationDueAt',
        { ':released': 0, ':now': now.toISOString(), ':old': held.rotation?.certificateId ?? '' },
      ),
      ...this.history(held, now, [entry]),
    ]);
  }

  async takeRotation(device: DeviceRecord, lease: Lease, now: Date): Promise<boolean> {
    const rotation = device.rotation as Rotation;
    return ifConditionHolds(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.devices,
          Key: { serialNumber: device.serialNumber },
          UpdateExpression: 'SET leaseId = :lease, leaseUntil = :until, rotationDueAt = :due',
          // Or already taken by this very call (its first try landed, the answer was lost).
          ConditionExpression:
            'leaseId = :lease OR (leaseId = :previousLease AND leaseUntil < :nowMs AND ' +
            'rotation.rotationId = :rid AND rotation.#state = :state)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':lease': lease.leaseId,
            ':until': lease.leaseUntil,
            ':due': new Date(lease.leaseUntil).toISOString(),
            ':previousLease': device.leaseId,
            ':nowMs': now.getTime(),
            ':rid': rotation.rotationId,
            ':state': rotation.state,
          },
        }),
      ),
    );
  }

  async release(held: DeviceRecord): Promise<void> {
    await releaseLease(this.doc, this.tables.devices, held);
  }

  async spendNonce(nonceKey: string, now: Date): Promise<boolean> {
    const put = this.noncePut(nonceKey, now).Put as NonNullable<TransactItem['Put']>;
    return ifConditionHolds(() => this.doc.send(new PutCommand(put)));
  }

  async listRotationsDue(
    state: Rotation['state'],
    dueBefore: Date,
    limit: number,
    cursor?: string,
  ): Promise<{ devices: DeviceRecord[]; cursor?: string }> {
    const out = await call(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tables.devices,
          IndexName: 'byRotation',
          KeyConditionExpression: 'rotationState = :state AND rotationDueAt < :before',
          ExpressionAttributeValues: { ':state': state, ':before': dueBefore.toISOString() },
          Limit: limit,
          ...(cursor ? { ExclusiveStartKey: decodeCursor(cursor, CURSOR_KEYS.devicesByRotation) } : {}),
        }),
      ),
    );
    const next = encodeCursor(out.LastEvaluatedKey);
    return { devices: (out.Items ?? []) as DeviceRecord[], ...(next ? { cursor: next } : {}) };
  }

  /** An update of a record this rotation holds (its lease), in the given rotation state. */
  private heldUpdate(
    held: DeviceRecord,
    state: Rotation['state'],
    expression: string,
    values: Record<string, unknown>,
  ): TransactItem {
    return {
      Update: {
        TableName: this.tables.devices,
        Key: { serialNumber: held.serialNumber },
        UpdateExpression: expression,
        ConditionExpression:
          'leaseId = :lease AND rotation.rotationId = :rid AND rotation.#state = :heldState',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: {
          ...values,
          ':lease': held.leaseId,
          ':rid': held.rotation?.rotationId,
          ':heldState': state,
        },
      },
    };
  }

  /** A spent nonce: kept (by TTL) a while past the window in which its proof is accepted at all. */
  private noncePut(nonceKey: string, now: Date): TransactItem {
    return {
      Put: {
        TableName: this.tables.claims,
        Item: {
          tokenHash: nonceKey,
          kind: 'proof-nonce',
          createdAt: now.toISOString(),
          purgeAt: epochSeconds(now) + 4 * PROOF_WINDOW_SECONDS,
          maxUses: 0,
          usesLeft: 0,
        },
        ConditionExpression: 'attribute_not_exists(tokenHash)',
      },
    };
  }

  private history(device: DeviceRecord, now: Date, entries: HistoryEntry[]): TransactItem[] {
    return historyPuts(this.tables.history, device.serialNumber, now, entries);
  }
}
