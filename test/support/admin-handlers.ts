import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { JsonEvent } from '../../shared/http/http-route.js';
import { adminRequestEvent, lambdaContext, parseResponse } from './events.js';
import { useLocalFunctionEnvironment } from './register-handler.js';

export type AdminHandler = (
  event: JsonEvent,
  context: typeof lambdaContext,
) => Promise<APIGatewayProxyStructuredResultV2>;

// Literal paths: the module loader cannot follow an import whose path is computed.
const FUNCTIONS = {
  'claims-create': () => import('../../functions/claims-create.js'),
  'claims-list': () => import('../../functions/claims-list.js'),
  'claims-revoke': () => import('../../functions/claims-revoke.js'),
  'devices-get': () => import('../../functions/devices-get.js'),
  'devices-list': () => import('../../functions/devices-list.js'),
  'devices-decommission': () => import('../../functions/devices-decommission.js'),
};

/**
 * An admin function (functions/<name>.ts) as Lambda loads it: configuration from the environment at
 * import, DynamoDB Local through AWS_ENDPOINT_URL_DYNAMODB (unless the caller stubbed the client).
 */
export async function loadAdminHandler(name: keyof typeof FUNCTIONS): Promise<AdminHandler> {
  useLocalFunctionEnvironment();
  return ((await FUNCTIONS[name]()) as unknown as { handler: AdminHandler }).handler;
}

/** Calls an admin handler with a signed HTTP API event for `routeKey`, and parses its answer. */
export async function callAdmin(
  handler: AdminHandler,
  routeKey: string,
  request: Parameters<typeof adminRequestEvent>[1],
) {
  return parseResponse(await handler(adminRequestEvent(routeKey, request), lambdaContext));
}
