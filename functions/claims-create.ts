import { ADMIN_MAX_BODY_BYTES, adminDeps } from '../shared/admin/admin-deps.js';
import { createClaims } from '../shared/admin/admin-service.js';
import { parseIdempotencyKey } from '../shared/admin/idempotency.js';
import { createClaimsSchema, parseWith } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** POST /claims (AWS_IAM): a batch of claim tokens, returned once; `Idempotency-Key` makes a repeat safe. */
export const handler = jsonRoute({ maxBodyBytes: ADMIN_MAX_BODY_BYTES }, async (event, logger) => {
  const key = event.headers?.['idempotency-key'];
  return {
    status: 201,
    body: await createClaims(
      parseWith(createClaimsSchema, event.json),
      { ...adminDeps, logger },
      key === undefined ? {} : { idempotencyKey: parseIdempotencyKey(key) },
    ),
  };
});
