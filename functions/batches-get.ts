import { adminDeps } from '../shared/admin/admin-deps.js';
import { getBatch } from '../shared/admin/admin-service.js';
import { batchIdParamSchema, parseWith } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** GET /batches/{batchId} (AWS_IAM): status and counts, from the batch item. */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await getBatch(parseWith(batchIdParamSchema, event.pathParameters?.batchId), {
    ...adminDeps,
    logger,
  }),
}));
