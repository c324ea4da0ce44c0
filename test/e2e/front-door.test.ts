import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { mintClaim } from '../../shared/claims/mint-claim.js';
import { type RunningSandbox, sandboxEnv, startSandbox } from '../support/sandbox-process.js';

let sandbox: RunningSandbox;

beforeAll(async () => {
  // Reserved concurrency 2 (a deploy-time param, as `serverless deploy --param` takes it) and slow
  // IoT calls, so that registrations overlap.
  sandbox = await startSandbox({
    env: { ...(await sandboxEnv()), SANDBOX_IOT_BEHAVIOUR: JSON.stringify({ '*': { latencyMs: 300 } }) },
    args: ['--param', 'registerReservedConcurrency=2'],
  });
}, 90_000);

afterAll(async () => {
  await sandbox?.stop();
});

async function newToken(): Promise<string> {
  const client = new DynamoDBClient({
    endpoint: sandbox.info.dynamodbEndpoint,
    region: sandbox.info.region,
    credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
  });
  const { token, claim } = mintClaim({ batchId: 'BURST', ttlSeconds: 3600 });
  await DynamoDBDocumentClient.from(client).send(
    new PutCommand({ TableName: sandbox.info.tables.claims, Item: claim }),
  );
  client.destroy();
  return token;
}

describe('the sandbox front door, end to end', () => {
  it('refuses a burst beyond register’s reserved concurrency at the door, as HTTP API does, with no 200 anywhere', async () => {
    // Six requests: within the register route's burst (10), so its throttling lets all of them in.
    const requests = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => ({
        claimToken: await newToken(),
        serialNumber: `SN-BURST-${i}`,
        csr: buildCsr().pem,
      })),
    );

    const answers = await Promise.all(
      requests.map(async (body) => {
        const response = await fetch(`${sandbox.info.apiUrl}/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return [response.status, await response.text()] as const;
      }),
    );

    expect(answers.filter(([status]) => status === 201)).toHaveLength(2);
    expect(answers.filter(([status]) => status !== 201)).toEqual(
      Array.from({ length: 4 }, () => [500, '{"message":"Internal Server Error"}']),
    );
    expect(sandbox.output()).toMatch(
      /\[door\] \S+ POST \/register \(POST \/register\) 500 \d+ ms reserved concurrency \(2\) reached/,
    );
  }, 60_000);
});
