import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IoTClient } from '@aws-sdk/client-iot';
import type { Stores } from '../../sandbox/invariants.js';
import type { SandboxInfo } from '../../sandbox/sandbox-config.js';
import { freePort } from './free-port.js';

export interface RunningSandbox {
  info: SandboxInfo;
  /** Everything `npm start` printed up to "Sandbox ready" and the commands after it. */
  output: () => string;
  secondsToReady: number;
  env: Record<string, string>;
  /** The `npm start` process (it leads the process group the sandbox runs in). */
  pid: number;
  /** Stops it as Ctrl-C or a service manager would: SIGTERM (or another signal) to the group. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves once `npm start` has exited. */
  exited: Promise<number | null>;
}

export interface SandboxOptions {
  /** Ports and folder to reuse (a restart); fresh free ports and a new folder otherwise. */
  env?: Record<string, string>;
  /** Arguments after `npm start --`, e.g. ['--persist']. */
  args?: string[];
  timeoutMs?: number;
}

/** Command lines of the running processes that contain `text` (read from /proc, no shell involved). */
export function processesMatching(text: string): string[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .flatMap((pid) => {
      try {
        return [readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')];
      } catch {
        return [];
      }
    })
    .filter((commandLine) => commandLine.includes(text));
}

/** Fresh free ports and a new .sandbox folder, as environment variables for `npm start`. */
export async function sandboxEnv(): Promise<Record<string, string>> {
  return {
    SANDBOX_DIR: mkdtempSync(join(tmpdir(), 'sandbox-')),
    SANDBOX_API_PORT: String(await freePort()),
    SANDBOX_LAMBDA_PORT: String(await freePort()),
    SANDBOX_DYNAMODB_PORT: String(await freePort()),
    SANDBOX_IOT_PORT: String(await freePort()),
    SANDBOX_CREDENTIALS_PORT: String(await freePort()),
  };
}

/** Process ids of every descendant of `pid`, from /proc (children, grandchildren, …). */
export function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so split after ")".
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const [child, ppid] of parents) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** Starts the sandbox the way a user does (`npm start`), on free ports and its own .sandbox folder. */
export async function startSandbox(options: SandboxOptions = {}): Promise<RunningSandbox> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const env = options.env ?? (await sandboxEnv());
  const dir = env.SANDBOX_DIR as string;
  const started = Date.now();
  const args = options.args?.length ? ['start', '--', ...options.args] : ['start'];
  const child: ChildProcess = spawn('npm', args, {
    env: { ...process.env, ...env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    process.kill(-(child.pid as number), signal);
    return exited;
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "Sandbox ready" within ${timeoutMs} ms:\n${output.slice(-3000)}`)),
      timeoutMs,
    );
    const check = () => {
      if (/Sandbox ready/.test(output) && /Ctrl-C stops everything/.test(output)) {
        clearTimeout(timer);
        // Not on every later chunk: a burst logs a line per request, and the output only grows.
        child.stdout?.off('data', check);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited with ${code}:\n${output.slice(-3000)}`));
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return {
    info: JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8')) as SandboxInfo,
    output: () => output,
    secondsToReady: (Date.now() - started) / 1000,
    env,
    pid: child.pid as number,
    stop,
    exited,
  };
}

/**
 * The HTTP status of the device's credentials exchange, with the key and certificate it saved (or
 * other files of its folder: a rotation's next.crt and next.key).
 */
export async function credentialsStatus(
  sandbox: RunningSandbox,
  serialNumber: string,
  files: { certificate: string; key: string } = { certificate: 'device.crt', key: 'device.key' },
): Promise<string> {
  const folder = join(sandbox.env.SANDBOX_DIR as string, 'devices', serialNumber);
  const url = sandbox.info.credentialsUrlTemplate.replace('{alias}', sandbox.info.roleAlias);
  const { stdout } = await promisify(execFile)('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '--cert',
    join(folder, files.certificate),
    '--key',
    join(folder, files.key),
    '--cacert',
    join(process.cwd(), sandbox.info.rootCaFile),
    '-H',
    `x-amzn-iot-thingname: ${serialNumber}`,
    url,
  ]);
  return stdout;
}

/** What the invariant checker reads of a running sandbox: its DynamoDB Local and IoT emulator. */
export function sandboxStores(sandbox: RunningSandbox): Stores {
  const credentials = { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' };
  const { info } = sandbox;
  return {
    dynamo: new DynamoDBClient({ endpoint: info.dynamodbEndpoint, region: info.region, credentials }),
    tables: info.tables,
    iot: new IoTClient({ endpoint: info.iotEndpoint, region: info.region, credentials }),
    policyName: info.policyName,
  };
}
