import { jsonRoute } from '../shared/http/http-route.js';
import { checkRotation } from '../shared/lifecycle/rotate-device.js';
import { proofInHeader, rotationDeps } from '../shared/lifecycle/rotation-deps.js';

/** GET /rotation: should this device rotate? Authorization: Device-Proof <jws> (no AWS auth). */
export const handler = jsonRoute({ maxBodyBytes: 0, body: 'none' }, async (event, logger) => ({
  status: 200,
  body: await checkRotation(proofInHeader(event.headers), { ...rotationDeps, logger }),
}));
