import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ROTATION_SCENARIOS, runRotationScenario } from '../support/rotation-scenarios.js';
import { createWorld, type World } from '../support/scenarios.js';

let world: World;

beforeAll(async () => {
  world = await createWorld(inject('dynamodbEndpoint'));
});
afterAll(async () => {
  await world.close();
});

describe('rotation under faults: one working certificate, the new one, after the retry and the reconciler', () => {
  it.each(ROTATION_SCENARIOS.map((scenario) => [scenario.name, scenario] as const))(
    '%s',
    async (_name, scenario) => {
      const result = await runRotationScenario(world, scenario);

      expect(result.answer).toBe(scenario.expected);
      expect(result.violationsAfterFirst).toEqual([]);
      expect(result.retry).toBe('confirmed');
      expect(result.working).toHaveLength(1);
      expect(result.workingIsNew).toBe(true);
      expect(result.retired).toBe(scenario.orphans ?? 0);
      expect(result.violationsAfterRetry).toEqual([]);
    },
    60_000,
  );
});
