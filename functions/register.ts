import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IoTClient } from '@aws-sdk/client-iot';
import { loadRegisterConfig } from '../shared/config.js';
import { jsonRoute } from '../shared/http/http-route.js';
import { DynamoDbInventory } from '../shared/inventory/dynamodb-inventory.js';
import { AwsIotGateway } from '../shared/iot/aws-iot-gateway.js';
import { endpointResolver } from '../shared/iot/endpoints.js';
import { type RegistrationDeps, registerDevice } from '../shared/registration/register-device.js';
import { parseRegisterRequest } from '../shared/registration/request.js';

// Clients and configuration once per container.
const config = loadRegisterConfig();
const iot = new AwsIotGateway(new IoTClient({ maxAttempts: 3 }));
const deps: RegistrationDeps = {
  inventory: new DynamoDbInventory(new DynamoDBClient({ maxAttempts: 3 }), {
    claims: config.claimsTable,
    devices: config.devicesTable,
  }),
  iot,
  endpoints: endpointResolver(iot, {
    credentialsProvider: config.credentialsEndpoint,
    data: config.dataEndpoint,
  }),
  settings: config,
};

/** POST /register: a device's first boot. The claim token in the body is the credential. */
export const handler = jsonRoute({ maxBodyBytes: config.maxBodyBytes }, async (event, logger) => {
  const request = parseRegisterRequest(event.json);
  const result = await registerDevice(request, { ...deps, logger });
  return { status: result.status, body: result.body };
});
