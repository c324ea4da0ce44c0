import { adminDeps } from '../shared/admin/admin-deps.js';
import { requestDeviceRotation } from '../shared/admin/admin-service.js';
import { operatorOf } from '../shared/admin/operator.js';
import { parseWith, serialParamSchema } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** POST /devices/{serialNumber}/rotate (AWS_IAM): ask the device to rotate its certificate. */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await requestDeviceRotation(
    parseWith(serialParamSchema, event.pathParameters?.serialNumber),
    operatorOf(event),
    { ...adminDeps, logger },
  ),
}));
