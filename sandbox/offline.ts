import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { spawnTied } from './processes.js';

export interface OfflineOptions {
  stage: string;
  region: string;
  host: string;
  /** serverless-offline's own HTTP server: internal, the front door answers the API port. */
  httpPort: number;
  /** Its Lambda Invoke API, which the front door calls. */
  lambdaPort: number;
  /** Folder to build the handlers into (its own, so `serverless package` cannot delete it). */
  buildDir: string;
  params: Record<string, string>;
  env: Record<string, string>;
  onOutput(line: string): void;
}

/**
 * serverless-offline running the real handlers, built by serverless-esbuild. It runs node directly
 * (no npx, no shell in between) in its own process group, tied to this process (spawnTied).
 */
export function startOffline(options: OfflineOptions): ChildProcess {
  const serverless = join(
    dirname(createRequire(import.meta.url).resolve('serverless/package.json')),
    'bin',
    'serverless.js',
  );
  const child = spawnTied(
    process.execPath,
    [
      serverless,
      'offline',
      'start',
      '--stage',
      options.stage,
      '--region',
      options.region,
      '--host',
      options.host,
      '--httpPort',
      String(options.httpPort),
      '--lambdaPort',
      String(options.lambdaPort),
      ...Object.entries(options.params).map(([name, value]) => `--param=${name}=${value}`),
      // Pass this process's environment (ROOT_CA_FILE among it), not only AWS_* variables.
      '--localEnvironment',
      // serverless-offline cannot evaluate AWS_IAM authorizers (it misreads them as JWT) and would
      // not start; the front door verifies SigV4 on those routes instead.
      '--noAuth',
    ],
    {
      detached: true, // its own process group, so that stopping it stops its workers too
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...options.env,
        SLS_TELEMETRY_DISABLED: '1',
        // serverless.yml's custom.esbuild.outputWorkFolder: relative to the service directory.
        ESBUILD_WORK_FOLDER: relative(process.cwd(), options.buildDir),
      },
    },
  );
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) options.onOutput(line);
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return child;
}
