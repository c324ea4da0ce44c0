import { dynamoDbClient, iotClient } from '../aws-clients.js';
import { loadRotationConfig } from '../config.js';
import { AwsIotGateway } from '../iot/aws-iot-gateway.js';
import { endpointResolver } from '../iot/endpoints.js';
import { DynamoDbRotationStore } from './dynamodb-rotation-store.js';
import type { RotationDeps } from './rotate-device.js';

/** Clients and configuration for the device's rotation routes, once per container. */
export const rotationConfig = loadRotationConfig();
const iot = new AwsIotGateway(iotClient());
export const rotationDeps: RotationDeps = {
  store: new DynamoDbRotationStore(dynamoDbClient(), {
    claims: rotationConfig.claimsTable,
    devices: rotationConfig.devicesTable,
    history: rotationConfig.historyTable,
  }),
  iot,
  endpoints: endpointResolver(iot, {
    credentialsProvider: rotationConfig.credentialsEndpoint,
    data: rotationConfig.dataEndpoint,
  }),
  settings: rotationConfig,
};

/** The proof a request carries: `{"proof": "<jws>"}` in a POST body. */
export function proofInBody(json: unknown): unknown {
  return typeof json === 'object' && json !== null ? (json as { proof?: unknown }).proof : undefined;
}

/** The proof a GET carries: `Authorization: Device-Proof <jws>`. */
export function proofInHeader(headers: Record<string, string | undefined> | undefined): unknown {
  const value = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === 'authorization')?.[1];
  const match = /^Device-Proof\s+(\S+)$/i.exec(value ?? '');
  return match?.[1];
}
