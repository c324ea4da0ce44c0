/**
 * Runs the reconciler once against the running sandbox (what the scheduled function does in AWS):
 *   npm run reconcile [-- --stale-after-seconds 0 --max-devices 200]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dynamoDbClient, iotClient } from '../shared/aws-clients.js';
import { DynamoDbInventory } from '../shared/inventory/dynamodb-inventory.js';
import { AwsIotGateway } from '../shared/iot/aws-iot-gateway.js';
import { DynamoDbRotationStore } from '../shared/lifecycle/dynamodb-rotation-store.js';
import { createLogger } from '../shared/logger.js';
import { reconcile } from '../shared/registration/reconcile.js';
import { type SandboxInfo, sandboxSettings } from './sandbox-config.js';

const { values } = parseArgs({
  options: {
    'stale-after-seconds': { type: 'string', default: '300' },
    'max-devices': { type: 'string', default: '200' },
  },
});
const settings = sandboxSettings();
const info = JSON.parse(readFileSync(join(settings.dir, 'sandbox.json'), 'utf8')) as SandboxInfo;
const credentials = { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' };
const dynamo = dynamoDbClient({ endpoint: info.dynamodbEndpoint, region: info.region, credentials });
const report = await reconcile({
  inventory: new DynamoDbInventory(dynamo, info.tables),
  rotations: new DynamoDbRotationStore(dynamo, info.tables),
  iot: new AwsIotGateway(iotClient({ endpoint: info.iotEndpoint, region: info.region, credentials })),
  policyName: info.policyName,
  logger: createLogger({ function: 'reconcile' }),
  staleAfterMs: Number(values['stale-after-seconds']) * 1000,
  maxDevices: Number(values['max-devices']),
});
console.log(JSON.stringify(report));
