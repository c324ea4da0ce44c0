import { jsonRoute } from '../shared/http/http-route.js';
import { confirmRotation } from '../shared/lifecycle/rotate-device.js';
import { proofInBody, rotationConfig, rotationDeps } from '../shared/lifecycle/rotation-deps.js';

/** POST /rotation/confirm: the device proves it holds the new key; the old certificate is retired. */
export const handler = jsonRoute(
  { maxBodyBytes: rotationConfig.maxBodyBytes },
  async (event, logger, context) => ({
    status: 200,
    body: await confirmRotation(proofInBody(event.json), {
      ...rotationDeps,
      logger,
      remainingMs: () => context.getRemainingTimeInMillis(),
    }),
  }),
);
