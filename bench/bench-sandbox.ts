import { rmSync } from 'node:fs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { IoTClient } from '@aws-sdk/client-iot';
import type { BehaviourConfig } from '../sandbox/iot/behaviour.js';
import type { CallEntry } from '../sandbox/iot/call-log.js';
import type { SandboxInfo } from '../sandbox/sandbox-config.js';
import { type AdminDeps, createClaims } from '../shared/admin/admin-service.js';
import { DynamoDbAdminStore } from '../shared/admin/dynamodb-admin-store.js';
import { dynamoDbClient, iotClient } from '../shared/aws-clients.js';
import { AwsIotGateway } from '../shared/iot/aws-iot-gateway.js';
import { createLogger } from '../shared/logger.js';
import { sandboxEnv, startSandbox } from '../test/support/sandbox-process.js';
import type { OperationCounts } from './arithmetic.js';
import { type DelayProxy, startDelayProxy } from './delay-proxy.js';

/** What GET /_sandbox/calls answers (sandbox/iot/server.ts). */
export interface CallsReading {
  operations: OperationCounts;
  registry: {
    certificatesCreated: number;
    certificatesDeleted: number;
    thingsCreated: number;
    thingsDeleted: number;
  };
  calls?: CallEntry[];
}

export interface BenchSandbox {
  info: SandboxInfo;
  /** Between the functions and DynamoDB Local. */
  proxy: DelayProxy;
  /** Straight to DynamoDB Local and the IoT emulator, with the functions' client settings. */
  dynamo: DynamoDBClient;
  iot: IoTClient;
  /** DynamoDB as the functions reach it: through the delaying proxy. */
  throughProxy: DynamoDBClient;
  setBehaviour(config: BehaviourConfig): Promise<void>;
  calls(since?: number): Promise<CallsReading>;
  /** Mints `count` single-use claims in `batchId` as POST /claims does (its own code, straight to DynamoDB Local). */
  mintClaims(batchId: string, count: number): Promise<string[]>;
  stop(): Promise<void>;
}

const credentials = { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' };

/**
 * `npm start` on free ports in a folder of its own, the functions' DynamoDB endpoint pointed at a
 * delaying proxy (SANDBOX_FUNCTIONS_DYNAMODB_ENDPOINT), as test/support/sandbox-process.ts starts one.
 */
export async function startBenchSandbox(log: (line: string) => void): Promise<BenchSandbox> {
  const env = await sandboxEnv();
  const proxy = await startDelayProxy({ host: '127.0.0.1', port: Number(env.SANDBOX_DYNAMODB_PORT) });
  env.SANDBOX_FUNCTIONS_DYNAMODB_ENDPOINT = proxy.url;
  const started = Date.now();
  const sandbox = await startSandbox({ env, timeoutMs: 180_000 }).catch(async (error: unknown) => {
    await proxy.close();
    rmSync(env.SANDBOX_DIR as string, { recursive: true, force: true });
    throw error;
  });
  log(`sandbox ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${sandbox.info.apiUrl})`);
  const { info } = sandbox;
  const dynamo = dynamoDbClient({ endpoint: info.dynamodbEndpoint, region: info.region, credentials });
  const iot = iotClient({ endpoint: info.iotEndpoint, region: info.region, credentials });
  const throughProxy = dynamoDbClient({ endpoint: proxy.url, region: info.region, credentials });
  const adminDeps: AdminDeps = {
    store: new DynamoDbAdminStore(dynamo, info.tables),
    iot: new AwsIotGateway(iot),
    policyName: info.policyName,
    defaultThingNamePrefix: '',
    logger: createLogger({}, 'error', () => {}),
  };
  const emulator = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${info.iotEndpoint}/_sandbox/${path}`, init);
    if (!response.ok) throw new Error(`IoT emulator: ${path} answered ${response.status}`);
    return response.json();
  };
  return {
    info,
    proxy,
    dynamo,
    iot,
    throughProxy,
    setBehaviour: async (config) => {
      await emulator('behaviour', { method: 'PUT', body: JSON.stringify(config) });
    },
    calls: async (since) =>
      (await emulator(since === undefined ? 'calls' : `calls?since=${since}`)) as CallsReading,
    mintClaims: async (batchId, count) => {
      const created = await createClaims({ batchId, count, ttlSeconds: 24 * 3600 }, adminDeps);
      return created.claims.map((claim) => claim.token);
    },
    stop: async () => {
      await sandbox.stop();
      await proxy.close();
      for (const client of [dynamo, iot, throughProxy]) client.destroy();
      rmSync(env.SANDBOX_DIR as string, { recursive: true, force: true });
    },
  };
}
