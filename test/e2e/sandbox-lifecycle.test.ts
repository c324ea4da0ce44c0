import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
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
