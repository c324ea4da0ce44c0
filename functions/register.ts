import { dynamoDbClient, iotClient } from '../shared/aws-clients.js';
import { loadRegisterConfig } from '../shared/config.js';
import { jsonRoute } from '../shared/http/http-route.js';
import { DynamoDbInventory } from '../shared/inventory/dynamodb-inventory.js';
import { AwsIotGateway } from '../shared/iot/aws-iot-gateway.js';
import { endpointResolver } from '../shared/iot/endpoints.js';
import { type RegistrationDeps, registerDevice } from '../shared/registration/register-device.js';
import { parseRegisterRequest } from '../shared/registration/request.js';

// Clients and configuration once per container.
const config = loadRegisterConfig();
const iot = new AwsIotGateway(iotClient());
const deps: RegistrationDeps = {
  inventory: new DynamoDbInventory(dynamoDbClient(), {
    claims: config.claimsTable,
    devices: config.devicesTable,
    history: config.historyTable,
  }),
  iot,
  endpoints: endpointResolver(iot, {
    credentialsProvider: config.credentialsEndpoint,
    data: config.dataEndpoint,
  }),
  settings: config,
};

/** POST /register: a device's first boot. The claim token in the body is the credential. */
export const handler = jsonRoute({ maxBodyBytes: config.maxBodyBytes }, async (event, logger, context) => {
  const request = parseRegisterRequest(event.json);
  const result = await registerDevice(request, {
    ...deps,
    logger,
    remainingMs: () => context.getRemainingTimeInMillis(),
  });
  return { status: result.status, body: result.body };
});
