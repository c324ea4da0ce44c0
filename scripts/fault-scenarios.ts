// Runs every fault scenario against a fresh DynamoDB Local and IoT emulator and prints the outcome
// table (completed / rolled back / refused) with the invariant checks, then the rotation scenarios'
// table: `npm run scenarios`.
import { startDynamoDbLocal } from '../sandbox/dynamodb-local.js';
import { freePort } from '../test/support/free-port.js';
import {
  ROTATION_SCENARIOS,
  type RotationScenarioResult,
  rotationScenarioTable,
  runRotationScenario,
} from '../test/support/rotation-scenarios.js';
import {
  createWorld,
  runScenario,
  SCENARIOS,
  type ScenarioResult,
  scenarioTable,
} from '../test/support/scenarios.js';

const dynamo = await startDynamoDbLocal(await freePort());
let failed = false;
try {
  const world = await createWorld(dynamo.endpoint);
  const results: ScenarioResult[] = [];
  for (const scenario of SCENARIOS) {
    const result = await runScenario(world, scenario);
    results.push(result);
    failed ||=
      result.violationsAfterFirst.length > 0 ||
      result.violationsAfterRetry.length > 0 ||
      result.retry !== 'completed';
  }
  const rotations: RotationScenarioResult[] = [];
  for (const scenario of ROTATION_SCENARIOS) {
    const result = await runRotationScenario(world, scenario);
    rotations.push(result);
    failed ||=
      result.violationsAfterFirst.length > 0 ||
      result.violationsAfterRetry.length > 0 ||
      result.retry !== 'confirmed' ||
      !result.workingIsNew;
  }
  await world.close();
  console.log(scenarioTable(results));
  console.log(`\n${rotationScenarioTable(rotations)}`);
} finally {
  await dynamo.stop();
}
process.exit(failed ? 1 : 0);
