import { adminDeps } from '../shared/admin/admin-deps.js';
import { listBatches } from '../shared/admin/admin-service.js';
import { listQuerySchema, parseWith } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** GET /batches?limit=…&cursor=… (AWS_IAM): every batch with its counts, paginated. */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await listBatches(parseWith(listQuerySchema, event.queryStringParameters ?? {}), {
    ...adminDeps,
    logger,
  }),
}));
