import { jsonRoute } from '../shared/http/http-route.js';
import { startRotation } from '../shared/lifecycle/rotate-device.js';
import { proofInBody, rotationConfig, rotationDeps } from '../shared/lifecycle/rotation-deps.js';

/** POST /rotation: a new certificate for a new key, proved by the current one (no AWS auth). */
export const handler = jsonRoute(
  { maxBodyBytes: rotationConfig.maxBodyBytes },
  async (event, logger, context) => {
    const result = await startRotation(proofInBody(event.json), {
      ...rotationDeps,
      logger,
      remainingMs: () => context.getRemainingTimeInMillis(),
    });
    return { status: result.status, body: result.body };
  },
);
