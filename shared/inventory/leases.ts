import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ifConditionHolds } from './dynamodb-errors.js';
import type { DeviceRecord } from './model.js';

/**
 * Gives up a lease on a device record (work that could not finish), so that the next holder need not
 * wait it out; nothing happens if it is not held any more (it lapsed and someone took it).
 */
export async function releaseLease(
  doc: DynamoDBDocumentClient,
  devicesTable: string,
  held: Pick<DeviceRecord, 'serialNumber' | 'leaseId'>,
): Promise<void> {
  await ifConditionHolds(() =>
    doc.send(
      new UpdateCommand({
        TableName: devicesTable,
        Key: { serialNumber: held.serialNumber },
        UpdateExpression: 'SET leaseUntil = :released',
        ConditionExpression: 'leaseId = :held',
        ExpressionAttributeValues: { ':released': 0, ':held': held.leaseId },
      }),
    ),
  );
}
