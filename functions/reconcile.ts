import type { Context, ScheduledEvent } from 'aws-lambda';
import { dynamoDbClient, iotClient } from '../shared/aws-clients.js';
import { loadReconcileConfig } from '../shared/config.js';
import { DynamoDbInventory } from '../shared/inventory/dynamodb-inventory.js';
import { AwsIotGateway } from '../shared/iot/aws-iot-gateway.js';
import { createLogger } from '../shared/logger.js';
import { type ReconcileReport, reconcile } from '../shared/registration/reconcile.js';

const config = loadReconcileConfig();
const inventory = new DynamoDbInventory(dynamoDbClient(), {
  claims: config.claimsTable,
  devices: config.devicesTable,
});
const iot = new AwsIotGateway(iotClient());
const logger = createLogger({ function: 'reconcile' });

/** Scheduled: completes the story of registrations whose attempt died (see shared/registration/reconcile.ts). */
export async function handler(_event: ScheduledEvent, context: Context): Promise<ReconcileReport> {
  const report = await reconcile({
    inventory,
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
