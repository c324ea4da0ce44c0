import { adminDeps } from '../shared/admin/admin-deps.js';
import { requestBatchRotation } from '../shared/admin/admin-service.js';
import { batchIdParamSchema, parseWith } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** POST /batches/{batchId}/rotate (AWS_IAM): ask every device of the batch to rotate, in one write. */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await requestBatchRotation(parseWith(batchIdParamSchema, event.pathParameters?.batchId), {
    ...adminDeps,
    logger,
  }),
}));
