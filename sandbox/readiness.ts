import { request } from 'node:https';
import { type DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { DescribeEndpointCommand, type IoTClient } from '@aws-sdk/client-iot';

export interface Probe {
  name: string;
  /** Resolves when the component answered as it should; throws (with why) otherwise. */
  check(): Promise<void>;
}

/**
 * "Sandbox ready" is printed only once every component answers a real request: a port that accepts
 * connections is not enough (it may belong to a process left over from an earlier run). Each probe
 * is retried until `timeoutMs`; the first that never succeeds fails the start with its last error.
 */
export async function waitUntilAnswering(probes: Probe[], timeoutMs: number, stillStarting = () => {}) {
  const deadline = Date.now() + timeoutMs;
  for (const probe of probes) {
    for (;;) {
      stillStarting();
      try {
        await probe.check();
        break;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(
            `${probe.name} did not answer within ${timeoutMs / 1000} s: ${(error as Error).message}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }
}

export const dynamoDbProbe = (client: DynamoDBClient, tables: string[]): Probe => ({
  name: 'DynamoDB Local',
  async check() {
    const { TableNames = [] } = await client.send(new ListTablesCommand({}));
    const missing = tables.filter((table) => !TableNames.includes(table));
    if (missing.length > 0) throw new Error(`tables missing: ${missing.join(', ')}`);
  },
});

export const iotProbe = (client: IoTClient): Probe => ({
  name: 'the IoT emulator',
  async check() {
    await client.send(new DescribeEndpointCommand({ endpointType: 'iot:CredentialProvider' }));
  },
});

/** The credentials provider, over TLS with the sandbox CA, answers a path it does not serve with 404. */
export const credentialsProbe = (endpoint: string, rootCaPem: string): Probe => ({
  name: 'the credentials provider',
  check: () =>
    new Promise((resolve, reject) => {
      const call = request(`https://${endpoint}/`, { ca: rootCaPem, timeout: 5_000 }, (response) => {
        response.resume();
        if (response.statusCode === 404) resolve();
        else reject(new Error(`answered ${response.statusCode}, expected 404`));
      });
      call.on('error', reject);
      call.on('timeout', () => call.destroy(new Error('timed out')));
      call.end();
    }),
});

/**
 * The API end to end: the front door, serverless-offline and the register handler itself, which
 * must refuse an empty registration with a 4xx problem (a 5xx means the handler does not run).
 */
export const apiProbe = (apiUrl: string): Probe => ({
  name: 'the API (POST /register)',
  async check() {
    const response = await fetch(`${apiUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'sandbox-readiness-probe' },
      body: '{}',
    });
    const body = await response.text();
    if (response.status < 400 || response.status >= 500) {
      throw new Error(`answered ${response.status} ${body.slice(0, 200)}`);
    }
  },
});
