import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import {
  credentialsStatus,
  descendantsOf,
  isAlive,
  type RunningSandbox,
  sandboxEnv,
  startSandbox,
} from '../support/sandbox-process.js';

const run = promisify(execFile);
const running: RunningSandbox[] = [];

afterEach(async () => {
  for (const sandbox of running.splice(0)) await sandbox.stop();
});

async function start(...args: Parameters<typeof startSandbox>): Promise<RunningSandbox> {
  const sandbox = await startSandbox(...args);
  running.push(sandbox);
  return sandbox;
}

async function eventually(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

function registerDevice(sandbox: RunningSandbox, serial: string) {
  return run('npm', ['run', '-s', 'device', '--', '--serial', serial], {
    env: { ...process.env, ...sandbox.env },
  });
}

async function deviceStatus(sandbox: RunningSandbox, serialNumber: string): Promise<string | undefined> {
  const client = new DynamoDBClient({
    endpoint: sandbox.info.dynamodbEndpoint,
    region: sandbox.info.region,
    credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
  });
  const { Item } = await DynamoDBDocumentClient.from(client).send(
    new GetCommand({ TableName: sandbox.info.tables.devices, Key: { serialNumber } }),
  );
  client.destroy();
  return Item?.status as string | undefined;
}

describe('npm start, stopped the hard way', () => {
  it('takes every process it started with it when npm is killed with -9, and starts again on the same ports', async () => {
    const first = await start();
    const processes = descendantsOf(first.pid);
    expect(processes.length).toBeGreaterThanOrEqual(3); // the sandbox, DynamoDB Local, serverless-offline

    process.kill(first.pid, 'SIGKILL');

    expect(await eventually(() => processes.every((pid) => !isAlive(pid)), 15_000)).toBe(true);
    const second = await start({ env: first.env });
    const { stdout } = await registerDevice(second, 'SN-AFTER-KILL');
    expect(stdout).toMatch(/registered {4}SN-AFTER-KILL \(HTTP 201\)/);
  }, 120_000);

  it('refuses to start, in one line naming the port, when a port is taken by something else', async () => {
    const env = await sandboxEnv();
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(Number(env.SANDBOX_API_PORT), '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const failure = await run('npm', ['start'], { env: { ...process.env, ...env } }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );

      expect(failure?.code).toBe(1);
      const lines = (failure?.stderr ?? '').split('\n').filter((line) => line.startsWith('sandbox:'));
      expect(lines).toEqual([
        expect.stringMatching(
          new RegExp(
            `^sandbox: port ${env.SANDBOX_API_PORT} \\(API\\) is already in use by pid ${process.pid} `,
          ),
        ),
      ]);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      squatter.close();
    }
  }, 30_000);
});

describe('npm start -- --persist', () => {
  let env: Record<string, string>;

  it('keeps registered devices ACTIVE, with working credentials, across Ctrl-C and a kill -9 of the process group', async () => {
    env = await sandboxEnv();
    const first = await start({ env, args: ['--persist'] });
    await registerDevice(first, 'SN-PERSIST-1');
    await first.stop('SIGINT');

    const second = await start({ env, args: ['--persist'] });
    expect(await deviceStatus(second, 'SN-PERSIST-1')).toBe('ACTIVE');
    expect(await credentialsStatus(second, 'SN-PERSIST-1')).toBe('200');
    await registerDevice(second, 'SN-PERSIST-2');
    const processes = descendantsOf(second.pid);
    await second.stop('SIGKILL');
    expect(await eventually(() => processes.every((pid) => !isAlive(pid)), 10_000)).toBe(true);

    const third = await start({ env, args: ['--persist'] });
    for (const serial of ['SN-PERSIST-1', 'SN-PERSIST-2']) {
      expect(await deviceStatus(third, serial)).toBe('ACTIVE');
      expect(await credentialsStatus(third, serial)).toBe('200');
    }
  }, 180_000);

  it('stays in memory by default: started without --persist, the same folder shows none of it', async () => {
    const sandbox = await start({ env });

    expect(sandbox.info.persist).toBe(false);
    expect(await deviceStatus(sandbox, 'SN-PERSIST-1')).toBeUndefined();
    expect(await credentialsStatus(sandbox, 'SN-PERSIST-1')).toBe('403');
  }, 60_000);
});
