import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { inject } from 'vitest';
import type { JsonEvent } from '../../shared/http/http-route.js';
import type { lambdaContext } from './events.js';
import { TEST_TABLES } from './tables.js';

export type RegisterHandler = (
  event: JsonEvent,
  context: typeof lambdaContext,
) => Promise<APIGatewayProxyStructuredResultV2>;

/** The environment serverless.yml gives the functions, pointed at the run's DynamoDB Local. */
export function useLocalFunctionEnvironment(): void {
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_DYNAMODB: inject('dynamodbEndpoint'),
    DEVICES_TABLE: TEST_TABLES.devices,
    CLAIMS_TABLE: TEST_TABLES.claims,
    HISTORY_TABLE: TEST_TABLES.history,
    IOT_POLICY_NAME: 'device-policy',
    IOT_ROLE_ALIAS: 'device-role-alias',
  });
}

/**
 * functions/register.ts as Lambda loads it: configuration from the environment at import, DynamoDB
 * Local through AWS_ENDPOINT_URL_DYNAMODB. IoT is whatever the caller stubbed on the IoTClient class.
 */
export async function loadRegisterHandler(): Promise<RegisterHandler> {
  useLocalFunctionEnvironment();
  return ((await import('../../functions/register.js')) as unknown as { handler: RegisterHandler }).handler;
}
