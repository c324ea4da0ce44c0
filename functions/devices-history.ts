import { adminDeps } from '../shared/admin/admin-deps.js';
import { deviceHistory } from '../shared/admin/admin-service.js';
import { historyQuerySchema, parseWith, serialParamSchema } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** GET /devices/{serialNumber}/history?limit=…&cursor=… (AWS_IAM): oldest first. */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await deviceHistory(
    parseWith(serialParamSchema, event.pathParameters?.serialNumber),
    parseWith(historyQuerySchema, event.queryStringParameters ?? {}),
    { ...adminDeps, logger },
  ),
}));
