import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ThrottledError } from '../errors.js';
import { guardDynamoDb } from './dynamodb-errors.js';
import { type BatchCounter, batchKey, type PublicKeyItem, type ThingNameItem } from './model.js';

export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** A transaction refused by a condition: `reasons[i]` is item i's cancellation code ('None' if it passed). */
export class TransactionRefusedError extends Error {
  override readonly name = 'TransactionRefusedError';
  constructor(readonly reasons: (string | undefined)[]) {
    super(`the transaction was refused: ${reasons.join(', ')}`);
  }
}

/**
 * Runs a DynamoDB transaction. One that only collided with another transaction on the same item (a
 * batch item is shared by a whole batch) is tried again, up to 4 times with jitter; throttling is a
 * 429; a failed condition is a TransactionRefusedError with the reasons.
 */
export async function writeTransaction(doc: DynamoDBDocumentClient, items: TransactItem[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await guardDynamoDb(() => doc.send(new TransactWriteCommand({ TransactItems: items })));
      return;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = (error.CancellationReasons ?? []).map((reason) => reason.Code);
      if (reasons.some((code) => code === 'ThrottlingError' || code === 'ProvisionedThroughputExceeded')) {
        throw new ThrottledError('the inventory is throttling', { retryAfterSeconds: 1, cause: error });
      }
      const conflictOnly =
        reasons.includes('TransactionConflict') && !reasons.includes('ConditionalCheckFailed');
      if (!conflictOnly || attempt >= 4) throw new TransactionRefusedError(reasons);
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40 * attempt));
    }
  }
}

/** A transaction whose condition may refuse it: false then, instead of an error. */
export async function ifTransactionHolds(
  doc: DynamoDBDocumentClient,
  items: TransactItem[],
): Promise<boolean> {
  try {
    await writeTransaction(doc, items);
    return true;
  } catch (error) {
    if (error instanceof TransactionRefusedError) return false;
    throw error;
  }
}

/** How a write changes its batch item. */
export interface BatchChange {
  add?: Partial<Record<BatchCounter, number>>;
  /** The registration completed at this time. */
  registeredAt?: Date;
  /** The item's condition: the batch was not revoked. */
  mustBeActive?: boolean;
}

/**
 * The batch item's part of a transaction: counters added, registration times set, and, with
 * `mustBeActive`, the condition that the batch was not revoked. Creates the item for a batch that
 * predates batch items.
 */
export function batchUpdate(claimsTable: string, batchId: string, change: BatchChange): TransactItem {
  const adds = Object.entries(change.add ?? {});
  const sets = [
    '#kind = :batchKind',
    'batchId = :batchId',
    'createdAt = if_not_exists(createdAt, :batchNow)',
  ];
  if (change.registeredAt) {
    sets.push('firstRegistrationAt = if_not_exists(firstRegistrationAt, :registeredAt)');
    sets.push('lastRegistrationAt = :registeredAt');
  }
  return {
    Update: {
      TableName: claimsTable,
      Key: { tokenHash: batchKey(batchId) },
      UpdateExpression:
        `SET ${sets.join(', ')}` +
        (adds.length ? ` ADD ${adds.map((_, i) => `#c${i} :c${i}`).join(', ')}` : ''),
      ...(change.mustBeActive
        ? { ConditionExpression: 'attribute_not_exists(#batchStatus) OR #batchStatus = :batchActive' }
        : {}),
      ExpressionAttributeNames: {
        '#kind': 'kind',
        ...(change.mustBeActive ? { '#batchStatus': 'status' } : {}),
        ...Object.fromEntries(adds.map(([name], i) => [`#c${i}`, name])),
      },
      ExpressionAttributeValues: {
        ':batchKind': 'batch',
        ':batchId': batchId,
        ':batchNow': (change.registeredAt ?? new Date()).toISOString(),
        ...(change.registeredAt ? { ':registeredAt': change.registeredAt.toISOString() } : {}),
        ...(change.mustBeActive ? { ':batchActive': 'ACTIVE' } : {}),
        ...Object.fromEntries(adds.map(([, value], i) => [`:c${i}`, value])),
      },
    },
  };
}

/**
 * An update that creates an item belonging to one owner for good, or touches it again for the same
 * owner (keeping its createdAt); its condition fails if another owner holds it.
 */
export function ownedUpdate(devicesTable: string, item: ThingNameItem | PublicKeyItem) {
  const { serialNumber, createdAt, ...fields } = item;
  const entries = Object.entries(fields);
  return {
    TableName: devicesTable,
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
  };
}
