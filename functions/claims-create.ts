import { ADMIN_MAX_BODY_BYTES, adminDeps } from '../shared/admin/admin-deps.js';
import { createClaims } from '../shared/admin/admin-service.js';
import { createClaimsSchema, parseWith } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** POST /claims (AWS_IAM): a batch of claim tokens, returned once. */
export const handler = jsonRoute({ maxBodyBytes: ADMIN_MAX_BODY_BYTES }, async (event, logger) => ({
  status: 201,
  body: await createClaims(parseWith(createClaimsSchema, event.json), { ...adminDeps, logger }),
}));
