import { adminDeps } from '../shared/admin/admin-deps.js';
import { decommissionDevice } from '../shared/admin/admin-service.js';
import { operatorOf } from '../shared/admin/operator.js';
import { parseWith, serialParamSchema } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** POST /devices/{serialNumber}/decommission (AWS_IAM) */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await decommissionDevice(
    parseWith(serialParamSchema, event.pathParameters?.serialNumber),
    { ...adminDeps, logger },
    operatorOf(event),
  ),
}));
