import { adminDeps } from '../shared/admin/admin-deps.js';
import { listDevices } from '../shared/admin/admin-service.js';
import { listQuerySchema, parseWith } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** GET /devices?batchId=…&status=…&limit=…&cursor=… (AWS_IAM) */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await listDevices(parseWith(listQuerySchema, event.queryStringParameters ?? {}), {
    ...adminDeps,
    logger,
  }),
}));
