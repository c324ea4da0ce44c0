import { dynamoDbClient, iotClient } from '../aws-clients.js';
import { loadAdminConfig } from '../config.js';
import { AwsIotGateway } from '../iot/aws-iot-gateway.js';
import { createLogger } from '../logger.js';
import type { AdminDeps } from './admin-service.js';
import { DynamoDbAdminStore } from './dynamodb-admin-store.js';

/** Clients and configuration for the admin handlers, once per container. */
const config = loadAdminConfig();
export const adminDeps: AdminDeps = {
  store: new DynamoDbAdminStore(dynamoDbClient(), {
    claims: config.claimsTable,
    devices: config.devicesTable,
    history: config.historyTable,
  }),
  iot: new AwsIotGateway(iotClient()),
  policyName: config.policyName,
  defaultThingNamePrefix: config.defaultThingNamePrefix,
  thingNamePattern: config.thingNamePattern,
  overdueAfterSeconds: config.overdueAfterSeconds,
  logger: createLogger({ api: 'admin' }),
};

/** Admin bodies are small except claim batches: 1000 serial numbers fit well inside this. */
export const ADMIN_MAX_BODY_BYTES = 256 * 1024;
