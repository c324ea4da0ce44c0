import { adminDeps } from '../shared/admin/admin-deps.js';
import { getDevice } from '../shared/admin/admin-service.js';
import { parseWith, serialParamSchema } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** GET /devices/{serialNumber} (AWS_IAM) */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await getDevice(parseWith(serialParamSchema, event.pathParameters?.serialNumber), {
    ...adminDeps,
    logger,
  }),
}));
