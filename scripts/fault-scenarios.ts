// Runs every fault scenario against a fresh DynamoDB Local and IoT emulator and prints the outcome
// table (completed / rolled back / refused) with the invariant checks: `npm run scenarios`.
import { startDynamoDbLocal } from '../sandbox/dynamodb-local.js';
import { freePort } from '../test/support/free-port.js';
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
  await world.close();
  console.log(scenarioTable(results));
} finally {
  await dynamo.stop();
}
process.exit(failed ? 1 : 0);
