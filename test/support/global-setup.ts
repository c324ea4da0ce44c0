import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { TestProject } from 'vitest/node';
import { type RunningDynamoDb, startDynamoDbLocal } from '../../sandbox/dynamodb-local.js';
import { createTables, resourcesOf } from '../../sandbox/tables.js';
import { freePort } from './free-port.js';
import { TEST_TABLES } from './tables.js';

let dynamo: RunningDynamoDb | undefined;

/** One DynamoDB Local for the whole run, with the tables serverless.yml declares. */
export async function setup(project: TestProject): Promise<void> {
  dynamo = await startDynamoDbLocal(await freePort());
  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  await createTables(client, resourcesOf('serverless.yml'), {
    ClaimsTable: TEST_TABLES.claims,
    DevicesTable: TEST_TABLES.devices,
  });
  client.destroy();
  project.provide('dynamodbEndpoint', dynamo.endpoint);
}

export async function teardown(): Promise<void> {
  await dynamo?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
  }
}
