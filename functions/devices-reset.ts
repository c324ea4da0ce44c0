import { adminDeps } from '../shared/admin/admin-deps.js';
import { resetDevice } from '../shared/admin/admin-service.js';
import { operatorOf } from '../shared/admin/operator.js';
import { parseWith, serialParamSchema } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** POST /devices/{serialNumber}/reset (AWS_IAM): after a repair, the serial may register once more. */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await resetDevice(
    parseWith(serialParamSchema, event.pathParameters?.serialNumber),
    operatorOf(event),
    {
      ...adminDeps,
      logger,
    },
  ),
}));
