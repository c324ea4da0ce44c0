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
  TableName?: string;
  AttributeDefinitions: AttributeDefinition[];
  KeySchema: KeySchemaElement[];
  GlobalSecondaryIndexes?: GlobalSecondaryIndex[];
  TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
}

export type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

/** The AWS::DynamoDB::Table resources of serverless.yml by logical id: the one copy of the schema. */
export function tableDefinitions(resources: Resources): Map<string, TableProperties> {
  const tables = new Map<string, TableProperties>();
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (resource.Type === 'AWS::DynamoDB::Table')
      tables.set(logicalId, resource.Properties as unknown as TableProperties);
  }
  return tables;
}

/** The resources of serverless.yml as written (variables unresolved; table shapes have none). */
export function resourcesOf(serverlessYmlPath: string): Resources {
  return readServerlessYml(serverlessYmlPath).resources?.Resources ?? {};
}

/**
 * Creates the given tables (logical id -> table name, or the TableName the resource declares),
 * on-demand, with their indexes and TTL, the way CloudFormation would.
 */
export async function createTables(
  client: DynamoDBClient,
  resources: Resources,
  names: Record<string, string | undefined>,
): Promise<void> {
  const definitions = tableDefinitions(resources);
  for (const [logicalId, name] of Object.entries(names)) {
    const table = definitions.get(logicalId);
    if (!table) throw new Error(`serverless.yml declares no DynamoDB table ${logicalId}`);
    const tableName = name ?? table.TableName;
    if (!tableName) throw new Error(`no table name for ${logicalId}`);
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
