import {
  type AttributeDefinition,
  CreateTableCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { readServerlessYml } from './cloudformation-yaml.js';

interface TableProperties {
  AttributeDefinitions: AttributeDefinition[];
  KeySchema: KeySchemaElement[];
  GlobalSecondaryIndexes?: GlobalSecondaryIndex[];
  TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
}

/** The AWS::DynamoDB::Table resources of serverless.yml, by logical id: the one copy of the schema. */
export function tableDefinitions(serverlessYmlPath: string): Map<string, TableProperties> {
  const resources = readServerlessYml(serverlessYmlPath).resources?.Resources ?? {};
  const tables = new Map<string, TableProperties>();
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (resource.Type === 'AWS::DynamoDB::Table')
      tables.set(logicalId, resource.Properties as unknown as TableProperties);
  }
  return tables;
}

/**
 * Creates the tables declared in serverless.yml under the given names (logical id -> table name),
 * on-demand, with their indexes and TTL, the way CloudFormation would.
 */
export async function createTables(
  client: DynamoDBClient,
  serverlessYmlPath: string,
  names: Record<string, string>,
): Promise<void> {
  const definitions = tableDefinitions(serverlessYmlPath);
  for (const [logicalId, tableName] of Object.entries(names)) {
    const table = definitions.get(logicalId);
    if (!table) throw new Error(`serverless.yml declares no DynamoDB table ${logicalId}`);
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: table.AttributeDefinitions,
        KeySchema: table.KeySchema,
        ...(table.GlobalSecondaryIndexes ? { GlobalSecondaryIndexes: table.GlobalSecondaryIndexes } : {}),
      }),
    );
    if (table.TimeToLiveSpecification?.Enabled) {
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: tableName,
          TimeToLiveSpecification: table.TimeToLiveSpecification,
        }),
      );
    }
  }
}
