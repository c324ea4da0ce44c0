import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { TestProject } from 'vitest/node';
import { type RunningDynamoDb, startDynamoDbLocal } from '../../sandbox/dynamodb-local.js';
import { createTables, resourcesOf } from '../../sandbox/tables.js';
import { freePort } from './free-port.js';
import { TEST_TABLES } from './tables.js';

let dynamo: RunningDynamoDb | undefined;

// vitest 5's failure reporter calls Map.groupBy, which Node 20 lacks (Node >= 21): without this,
// a failing test crashes the reporter instead of printing why it failed.
if (typeof (Map as { groupBy?: unknown }).groupBy !== 'function') {
  Object.defineProperty(Map, 'groupBy', {
    value: <K, T>(items: Iterable<T>, keyOf: (item: T, index: number) => K): Map<K, T[]> => {
      const groups = new Map<K, T[]>();
      let index = 0;
      for (const item of items) {
        const key = keyOf(item, index++);
        groups.set(key, [...(groups.get(key) ?? []), item]);
      }
      return groups;
    },
  });
}

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
    HistoryTable: TEST_TABLES.history,
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
