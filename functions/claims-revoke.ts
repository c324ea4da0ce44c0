import { adminDeps } from '../shared/admin/admin-deps.js';
import { revokeClaims } from '../shared/admin/admin-service.js';
import { parseWith, revokeClaimsSchema } from '../shared/admin/schemas.js';
import { jsonRoute } from '../shared/http/http-route.js';

/** POST /claims/revoke {claimId} or {batchId} (AWS_IAM) */
export const handler = jsonRoute({ maxBodyBytes: 4096 }, async (event, logger) => ({
  status: 200,
  body: await revokeClaims(parseWith(revokeClaimsSchema, event.json), { ...adminDeps, logger }),
}));
