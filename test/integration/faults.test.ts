import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createWorld, runScenario, SCENARIOS, type World } from '../support/scenarios.js';

let world: World;

beforeAll(async () => {
  world = await createWorld(inject('dynamodbEndpoint'));
});
afterAll(async () => {
  await world.close();
});

describe('registration under faults (DynamoDB Local, IoT emulator, the invariant checker after each step)', () => {
  it.each(SCENARIOS.map((scenario) => [scenario.name, scenario] as const))(
    '%s',
    async (_name, scenario) => {
      const result = await runScenario(world, scenario);

      expect(result.outcome).toBe(scenario.expected);
      expect(result.violationsAfterFirst).toEqual([]);
      expect(result.retry).toBe('completed');
      expect(result.violationsAfterRetry).toEqual([]);
      expect(result.reconciled).toBe(scenario.after === 'reconcile then retry' ? 1 : 0);
    },
    60_000,
  );
});
