import type { Context, ScheduledEvent } from 'aws-lambda';
import { dynamoDbClient, iotClient } from '../shared/aws-clients.js';
import { loadReconcileConfig } from '../shared/config.js';
import { DynamoDbInventory } from '../shared/inventory/dynamodb-inventory.js';
import { AwsIotGateway } from '../shared/iot/aws-iot-gateway.js';
import { DynamoDbRotationStore } from '../shared/lifecycle/dynamodb-rotation-store.js';
import { createLogger } from '../shared/logger.js';
import { type ReconcileReport, reconcile } from '../shared/registration/reconcile.js';

const config = loadReconcileConfig();
const tables = { claims: config.claimsTable, devices: config.devicesTable, history: config.historyTable };
const dynamo = dynamoDbClient();
const inventory = new DynamoDbInventory(dynamo, tables);
const rotations = new DynamoDbRotationStore(dynamo, tables);
const iot = new AwsIotGateway(iotClient());
const logger = createLogger({ function: 'reconcile' });

/** Scheduled: completes the story of registrations whose attempt died (see shared/registration/reconcile.ts). */
export async function handler(_event: ScheduledEvent, context: Context): Promise<ReconcileReport> {
  const report = await reconcile({
    inventory,
    rotations,
    iot,
    policyName: config.policyName,
    logger,
    staleAfterMs: config.staleAfterSeconds * 1000,
    maxDevices: config.maxDevicesPerRun,
    remainingMs: () => context.getRemainingTimeInMillis(),
  });
  logger.info('reconcile run', { ...report });
  return report;
}
