import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { inParallel } from '../concurrency.js';
import { InvalidRequestError, RegistrationConflictError, ServiceUnavailableError } from '../errors.js';
import { type HistoryItem, historyPuts } from '../history/history.js';
import { CURSOR_KEYS, cursorRefused, decodeCursor, encodeCursor } from '../inventory/cursor.js';
import { guardDynamoDb, ifConditionHolds } from '../inventory/dynamodb-errors.js';
import type { TableNames } from '../inventory/dynamodb-inventory.js';
import { releaseLease } from '../inventory/leases.js';
import {
  type BatchItem,
  batchKey,
  type Claim,
  type DeviceRecord,
  type DeviceStatus,
  devicesCounter,
  issuedCounter,
  NOTHING_DONE,
  revokedCounter,
  type ThingNameItem,
  thingNameKey,
} from '../inventory/model.js';
import {
  batchUpdate,
  ifTransactionHolds,
  ownedUpdate,
  TransactionRefusedError,
  writeTransaction,
} from '../inventory/transactions.js';
import type { AdminStore, Page } from './admin-store.js';
import type { ClaimsRequestRecord } from './idempotency.js';

const BATCH_SIZE = 25;
const PARALLEL_BATCHES = 8;
const MAX_UNPROCESSED_RETRIES = 8;

/**
 * Claims requests are recorded in the claims table under keys no token hash can take (hashes are hex),
 * with none of the index attributes (batchId, claimId), so no claim query or lookup ever meets them.
 * They spend no uses (maxUses = usesLeft = 0): whatever sums a table's uses counts them as nothing.
 */
const REQUEST_KEY_PREFIX = 'request#';
const requestKey = (idempotencyKey: string) => `${REQUEST_KEY_PREFIX}${idempotencyKey}`;

interface ClaimsRequestItem {
  tokenHash: string;
  kind: 'claims-request';
  requestBatchId: string;
  fingerprint: string;
  claimIds: string[];
  state: ClaimsRequestRecord['state'];
  createdAt: string;
  purgeAt: number;
  maxUses: 0;
  usesLeft: 0;
}

export class DynamoDbAdminStore implements AdminStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tables: TableNames,
    private readonly sleep: (ms: number) => Promise<void> = (ms) =>
      new Promise((resolve) => setTimeout(resolve, ms)),
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async reserveThingNames(
    names: { thingName: string; serialNumber: string }[],
    now: Date,
  ): Promise<string[]> {
    const refused = await inParallel(names, PARALLEL_BATCHES, async ({ thingName, serialNumber }) => {
      const item: ThingNameItem = {
        serialNumber: thingNameKey(thingName),
        kind: 'thing-name',
        thingName,
        owner: serialNumber,
        createdAt: now.toISOString(),
      };
      const reserved = await ifConditionHolds(() =>
        this.doc.send(new UpdateCommand(ownedUpdate(this.tables.devices, item))),
      );
      return reserved ? undefined : thingName;
    });
    return refused.filter((name): name is string => name !== undefined);
  }

  async reserveClaimsRequest(record: ClaimsRequestRecord): Promise<ClaimsRequestRecord | undefined> {
    const key = requestKey(record.idempotencyKey);
    try {
      await guardDynamoDb(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tables.claims,
            Key: { tokenHash: key },
            UpdateExpression:
              'SET #kind = :kind, requestBatchId = :batch, fingerprint = :fingerprint, claimIds = :ids, ' +
              '#state = :state, createdAt = :createdAt, purgeAt = :purgeAt, maxUses = :zero, usesLeft = :zero',
            ConditionExpression: 'attribute_not_exists(tokenHash)',
            ExpressionAttributeNames: { '#kind': 'kind', '#state': 'state' },
            ExpressionAttributeValues: {
              ':kind': 'claims-request',
              ':batch': record.batchId,
              ':fingerprint': record.fingerprint,
              ':ids': record.claimIds,
              ':state': record.state,
              ':createdAt': record.createdAt,
              ':purgeAt': record.purgeAt,
              ':zero': 0,
            },
          }),
        ),
      );
      return undefined;
    } catch (error) {
      if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
    }
    const out = await guardDynamoDb(() =>
      this.doc.send(
        new GetCommand({ TableName: this.tables.claims, Key: { tokenHash: key }, ConsistentRead: true }),
      ),
    );
    const item = out.Item as ClaimsRequestItem;
    return {
      idempotencyKey: record.idempotencyKey,
      batchId: item.requestBatchId,
      fingerprint: item.fingerprint,
      claimIds: item.claimIds,
      state: item.state,
      createdAt: item.createdAt,
      purgeAt: item.purgeAt,
    };
  }

  async completeClaimsRequest(idempotencyKey: string): Promise<void> {
    await guardDynamoDb(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.claims,
          Key: { tokenHash: requestKey(idempotencyKey) },
          UpdateExpression: 'SET #state = :completed',
          ConditionExpression: 'attribute_exists(tokenHash)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':completed': 'COMPLETED' },
        }),
      ),
    );
  }

  async putClaims(claims: Claim[]): Promise<void> {
    const batches: Claim[][] = [];
    for (let i = 0; i < claims.length; i += BATCH_SIZE) batches.push(claims.slice(i, i + BATCH_SIZE));
    await inParallel(batches, PARALLEL_BATCHES, (batch) => this.writeBatch(batch));
  }

  /** BatchWriteItem may return UnprocessedItems under load: retried with backoff, never dropped. */
  private async writeBatch(batch: Claim[]): Promise<void> {
    let requests = batch.map((claim) => ({ PutRequest: { Item: claim } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > MAX_UNPROCESSED_RETRIES) {
        throw new ServiceUnavailableError('the inventory kept refusing writes; retry', {
          retryAfterSeconds: 5,
        });
      }
      if (attempt > 0) await this.sleep(Math.min(2_000, 50 * 2 ** attempt));
      const out = await guardDynamoDb(() =>
        this.doc.send(new BatchWriteCommand({ RequestItems: { [this.tables.claims]: requests } })),
      );
      requests = (out.UnprocessedItems?.[this.tables.claims] ?? []) as typeof requests;
    }
  }

  async listClaims(batchId: string, limit: number, cursor?: string): Promise<Page<Claim>> {
    return this.query<Claim>(
      {
        TableName: this.tables.claims,
        IndexName: 'byBatch',
        KeyConditionExpression: 'batchId = :batch',
        ExpressionAttributeValues: { ':batch': batchId },
      },
      CURSOR_KEYS.claimsByBatch,
      limit,
      cursor,
    );
  }

  async findClaim(claimId: string): Promise<Claim | undefined> {
    const keys = await guardDynamoDb(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tables.claims,
          IndexName: 'byClaimId',
          KeyConditionExpression: 'claimId = :id',
          ExpressionAttributeValues: { ':id': claimId },
        }),
      ),
    );
    const tokenHash = keys.Items?.[0]?.tokenHash as string | undefined;
    if (!tokenHash) return undefined;
    const out = await guardDynamoDb(() =>
      this.doc.send(
        new GetCommand({ TableName: this.tables.claims, Key: { tokenHash }, ConsistentRead: true }),
      ),
    );
    return out.Item as Claim | undefined;
  }

  async revokeClaim(claim: Claim, now: Date): Promise<boolean> {
    const revoke = (unusedOnly: boolean) => ({
      TableName: this.tables.claims,
      Key: { tokenHash: claim.tokenHash },
      UpdateExpression: 'SET #status = :revoked, revokedAt = :now',
      ConditionExpression: `#status = :active${unusedOnly ? ' AND usesLeft = maxUses' : ''}`,
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':revoked': 'REVOKED', ':active': 'ACTIVE', ':now': now.toISOString() },
    });
    // An unused token is counted revoked in its batch, in the same transaction (replayed safely by its
    // client token if an answer is lost); a used one is only revoked.
    try {
      await writeTransaction(this.doc, [
        { Update: revoke(true) },
        batchUpdate(this.tables.claims, claim.batchId, { add: { [revokedCounter(claim.expiresAt)]: 1 } }),
      ]);
      return true;
    } catch (error) {
      if (!(error instanceof TransactionRefusedError)) throw error;
    }
    return ifConditionHolds(() => this.doc.send(new UpdateCommand(revoke(false))));
  }

  async openBatch(batchId: string, now: Date): Promise<boolean> {
    return ifConditionHolds(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.claims,
          Key: { tokenHash: batchKey(batchId) },
          UpdateExpression:
            'SET #kind = :kind, batchId = :batchId, #status = if_not_exists(#status, :active), ' +
            'createdAt = if_not_exists(createdAt, :now)',
          ConditionExpression: 'attribute_not_exists(#status) OR #status = :active',
          ExpressionAttributeNames: { '#kind': 'kind', '#status': 'status' },
          ExpressionAttributeValues: {
            ':kind': 'batch',
            ':batchId': batchId,
            ':active': 'ACTIVE',
            ':now': now.toISOString(),
          },
        }),
      ),
    );
  }

  async countIssued(batchId: string, expiresAt: number, count: number): Promise<void> {
    // A transaction of one: its client token makes the SDK's retry of a lost answer count once.
    await writeTransaction(this.doc, [
      batchUpdate(this.tables.claims, batchId, { add: { [issuedCounter(expiresAt)]: count } }),
    ]);
  }

  async revokeBatch(batchId: string, now: Date): Promise<BatchItem | undefined> {
    const out = await guardDynamoDb(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.claims,
          Key: { tokenHash: batchKey(batchId) },
          UpdateExpression:
            'SET #kind = :kind, batchId = :batchId, #status = :revoked, ' +
            'revokedAt = if_not_exists(revokedAt, :now), createdAt = if_not_exists(createdAt, :now)',
          ConditionExpression: 'attribute_exists(tokenHash)',
          ExpressionAttributeNames: { '#kind': 'kind', '#status': 'status' },
          ExpressionAttributeValues: {
            ':kind': 'batch',
            ':batchId': batchId,
            ':revoked': 'REVOKED',
            ':now': now.toISOString(),
          },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    ).catch((error: unknown) => {
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    });
    return out?.Attributes as BatchItem | undefined;
  }

  async getBatch(batchId: string): Promise<BatchItem | undefined> {
    const out = await guardDynamoDb(() =>
      this.doc.send(
        new GetCommand({
          TableName: this.tables.claims,
          Key: { tokenHash: batchKey(batchId) },
          ConsistentRead: true,
        }),
      ),
    );
    return out.Item as BatchItem | undefined;
  }

  async listBatches(limit: number, cursor?: string): Promise<Page<BatchItem>> {
    return this.query<BatchItem>(
      {
        TableName: this.tables.claims,
        IndexName: 'byKind',
        KeyConditionExpression: '#kind = :batch',
        ExpressionAttributeNames: { '#kind': 'kind' },
        ExpressionAttributeValues: { ':batch': 'batch' },
      },
      CURSOR_KEYS.batchesByKind,
      limit,
      cursor,
    );
  }

  async getDevice(serialNumber: string): Promise<DeviceRecord | undefined> {
    const out = await guardDynamoDb(() =>
      this.doc.send(
        new GetCommand({ TableName: this.tables.devices, Key: { serialNumber }, ConsistentRead: true }),
      ),
    );
    return out.Item as DeviceRecord | undefined;
  }

  async listDevices(
    filter: { batchId?: string; status?: DeviceStatus },
    limit: number,
    cursor?: string,
  ): Promise<Page<DeviceRecord>> {
    if (filter.batchId) {
      return this.query<DeviceRecord>(
        {
          TableName: this.tables.devices,
          IndexName: 'byBatch',
          KeyConditionExpression: 'batchId = :batch',
          ...(filter.status
            ? { FilterExpression: '#status = :status', ExpressionAttributeNames: { '#status': 'status' } }
            : {}),
          ExpressionAttributeValues: {
            ':batch': filter.batchId,
            ...(filter.status ? { ':status': filter.status } : {}),
          },
        },
        CURSOR_KEYS.devicesByBatch,
        limit,
        cursor,
      );
    }
    if (filter.status) {
      return this.query<DeviceRecord>(
        {
          TableName: this.tables.devices,
          IndexName: 'byStatus',
          KeyConditionExpression: '#status = :status',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': filter.status },
        },
        CURSOR_KEYS.devicesByStatus,
        limit,
        cursor,
      );
    }
    throw new InvalidRequestError('give batchId or status (or both)');
  }

  async holdForDecommission(device: DeviceRecord, held: DeviceRecord, now: Date): Promise<boolean> {
    return ifConditionHolds(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.devices,
          Key: { serialNumber: device.serialNumber },
          UpdateExpression: 'SET leaseId = :lease, leaseUntil = :until, updatedAt = :now',
          // Or already held by this very call (its first try landed, the answer was lost).
          ConditionExpression:
            'leaseId = :lease OR (leaseId = :previous AND #status = :was AND leaseUntil < :nowMs)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':lease': held.leaseId,
            ':until': held.leaseUntil,
            ':now': now.toISOString(),
            ':previous': device.leaseId,
            ':was': device.status,
            ':nowMs': now.getTime(),
          },
        }),
      ),
    );
  }

  async releaseHold(held: DeviceRecord): Promise<void> {
    await releaseLease(this.doc, this.tables.devices, held);
  }

  async markDecommissioned(device: DeviceRecord, now: Date, actor: string): Promise<boolean> {
    const decommission = {
      TableName: this.tables.devices,
      Key: { serialNumber: device.serialNumber },
      UpdateExpression:
        'SET #status = :decommissioned, decommissionedAt = :now, updatedAt = :now, progress = :progress, ' +
        'leaseUntil = :released REMOVE rotation, rotationState, rotationDueAt, rotationRequestedAt',
      ConditionExpression: 'leaseId = :lease AND #status = :was',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':decommissioned': 'DECOMMISSIONED',
        ':released': 0,
        ':now': now.toISOString(),
        ':lease': device.leaseId,
        ':was': device.status,
        ':progress': {
          ...device.progress,
          policyAttached: false,
          thingAttached: false,
          thing: false,
          certificateActive: false,
        },
      },
    };
    const counts = batchUpdate(this.tables.claims, device.batchId, {
      add: { [devicesCounter(device.status)]: -1, [devicesCounter('DECOMMISSIONED')]: 1 },
    });
    return ifTransactionHolds(this.doc, [
      { Update: decommission },
      counts,
      ...historyPuts(this.tables.history, device.serialNumber, now, [
        {
          event: 'DECOMMISSIONED',
          actor,
          ...(device.certificateId ? { certificateId: device.certificateId } : {}),
        },
      ]),
    ]);
  }

  async markReset(device: DeviceRecord, now: Date, actor: string): Promise<boolean> {
    const reset = {
      TableName: this.tables.devices,
      Key: { serialNumber: device.serialNumber },
      UpdateExpression:
        'SET #status = :reset, resetAt = :now, updatedAt = :now, progress = :progress, keepThing = :yes, ' +
        'leaseUntil = :released REMOVE certificateId, certificateArn, certificatePem, rotation, rotationState, ' +
        'rotationDueAt, rotationRequestedAt, attachmentsPending, failure, decommissionedAt, rotatedAt, ' +
        'previousCertificateId',
      ConditionExpression: 'leaseId = :lease AND #status = :was',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':reset': 'RESET',
        ':now': now.toISOString(),
        ':progress': NOTHING_DONE,
        ':yes': true,
        ':released': 0,
        ':lease': device.leaseId,
        ':was': device.status,
      },
    };
    const counted =
      device.status === 'ACTIVE' || device.status === 'FAILED' || device.status === 'DECOMMISSIONED';
    return ifTransactionHolds(this.doc, [
      { Update: reset },
      ...(counted
        ? [batchUpdate(this.tables.claims, device.batchId, { add: { [devicesCounter(device.status)]: -1 } })]
        : []),
      ...historyPuts(this.tables.history, device.serialNumber, now, [
        {
          event: 'RESET',
          actor,
          ...(device.certificateId ? { previousCertificateId: device.certificateId } : {}),
        },
      ]),
    ]);
  }

  async dropRotation(held: DeviceRecord): Promise<void> {
    const dropped = await ifConditionHolds(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.devices,
          Key: { serialNumber: held.serialNumber },
          UpdateExpression: 'REMOVE rotation, rotationState, rotationDueAt',
          ConditionExpression: 'leaseId = :held',
          ExpressionAttributeValues: { ':held': held.leaseId },
        }),
      ),
    );
    if (!dropped) {
      throw new RegistrationConflictError('the device changed while its rotation was retired; retry', {
        retryAfterSeconds: 1,
      });
    }
  }

  async requestRotation(device: DeviceRecord, now: Date, actor: string): Promise<boolean> {
    return ifTransactionHolds(this.doc, [
      {
        Update: {
          TableName: this.tables.devices,
          Key: { serialNumber: device.serialNumber },
          UpdateExpression: 'SET rotationRequestedAt = :now',
          ConditionExpression: '#status = :active',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':now': now.toISOString(), ':active': 'ACTIVE' },
        },
      },
      ...historyPuts(this.tables.history, device.serialNumber, now, [{ event: 'ROTATION_REQUESTED', actor }]),
    ]);
  }

  async requestBatchRotation(batchId: string, now: Date): Promise<BatchItem | undefined> {
    try {
      const out = await guardDynamoDb(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tables.claims,
            Key: { tokenHash: batchKey(batchId) },
            UpdateExpression: 'SET rotationRequestedAt = :now',
            ConditionExpression: 'attribute_exists(tokenHash)',
            ExpressionAttributeValues: { ':now': now.toISOString() },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return out.Attributes as BatchItem;
    } catch (error) {
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
  }

  async listHistory(serialNumber: string, limit: number, cursor?: string): Promise<Page<HistoryItem>> {
    return this.query<HistoryItem>(
      {
        TableName: this.tables.history,
        KeyConditionExpression: 'serialNumber = :serial',
        ExpressionAttributeValues: { ':serial': serialNumber },
        ConsistentRead: true,
      },
      CURSOR_KEYS.history,
      limit,
      cursor,
    );
  }

  /**
   * Pages through a query until `limit` items are found (a filter may thin pages out); the cursor is
   * the last evaluated key, base64url-encoded, with the index's `keys`.
   */
  private async query<T>(
    input: QueryCommandInput,
    keys: readonly string[],
    limit: number,
    cursor?: string,
  ): Promise<Page<T>> {
    const items: T[] = [];
    let startKey: Record<string, unknown> | undefined = decodeCursor(cursor, keys);
    let fromClient = startKey !== undefined;
    do {
      const page = new QueryCommand({
        ...input,
        Limit: limit - items.length,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      });
      const out = await guardDynamoDb(() => this.doc.send(page)).catch((error: unknown) => {
        // A well-shaped key from another partition or range: DynamoDB refuses it as a start key.
        if (fromClient && error instanceof Error && error.name === 'ValidationException')
          throw cursorRefused(error);
        throw error;
      });
      fromClient = false;
      items.push(...((out.Items ?? []) as T[]));
      startKey = out.LastEvaluatedKey;
    } while (startKey && items.length < limit);
    return {
      items,
      ...(startKey ? { cursor: encodeCursor(startKey) as string } : {}),
    };
  }
}
