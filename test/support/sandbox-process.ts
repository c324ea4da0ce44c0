import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SandboxInfo } from '../../sandbox/sandbox-config.js';
import { freePort } from './free-port.js';

export interface RunningSandbox {
  info: SandboxInfo;
  /** Everything `npm start` printed up to "Sandbox ready" and the commands after it. */
  output: () => string;
  secondsToReady: number;
  env: Record<string, string>;
  stop(): Promise<number | null>;
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

/** Starts the sandbox the way a user does (`npm start`), on free ports and its own .sandbox folder. */
export async function startSandbox(timeoutMs = 60_000): Promise<RunningSandbox> {
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-'));
  const env: Record<string, string> = {
    SANDBOX_DIR: dir,
    SANDBOX_API_PORT: String(await freePort()),
    SANDBOX_LAMBDA_PORT: String(await freePort()),
    SANDBOX_DYNAMODB_PORT: String(await freePort()),
    SANDBOX_IOT_PORT: String(await freePort()),
    SANDBOX_CREDENTIALS_PORT: String(await freePort()),
  };
  const started = Date.now();
  const child: ChildProcess = spawn('npm', ['start'], {
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
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    process.kill(-(child.pid as number), 'SIGTERM');
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
    stop,
  };
}
