import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { inject } from 'vitest';
import { DynamoDbInventory } from '../../shared/inventory/dynamodb-inventory.js';
import type { Claim, DeviceRecord } from '../../shared/inventory/model.js';
import { TEST_TABLES } from './tables.js';

/** A client for the run's DynamoDB Local (started by global-setup.ts). */
export function localDynamoDb(): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: inject('dynamodbEndpoint'),
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

export function localInventory(client: DynamoDBClient = localDynamoDb()): DynamoDbInventory {
  return new DynamoDbInventory(client, TEST_TABLES);
}

export async function putClaim(client: DynamoDBClient, claim: Claim): Promise<void> {
  await DynamoDBDocumentClient.from(client).send(
    new PutCommand({ TableName: TEST_TABLES.claims, Item: claim }),
  );
}

export async function readClaim(client: DynamoDBClient, tokenHash: string): Promise<Claim | undefined> {
  const out = await DynamoDBDocumentClient.from(client).send(
    new GetCommand({ TableName: TEST_TABLES.claims, Key: { tokenHash }, ConsistentRead: true }),
  );
  return out.Item as Claim | undefined;
}

export async function readDevice(
  client: DynamoDBClient,
  serialNumber: string,
): Promise<DeviceRecord | undefined> {
  const out = await DynamoDBDocumentClient.from(client).send(
    new GetCommand({ TableName: TEST_TABLES.devices, Key: { serialNumber }, ConsistentRead: true }),
  );
  return out.Item as DeviceRecord | undefined;
}
