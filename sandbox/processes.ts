import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Spawns a child that cannot outlive this process, even when this process is killed with SIGKILL
 * and gets no chance to clean up: on Linux the child is started through util-linux's `setpriv
 * --pdeathsig SIGKILL`, so the kernel kills it the moment its parent dies. Where setpriv is missing
 * (macOS), the child is spawned plainly and only a graceful stop reaches it.
 */
export function spawnTied(command: string, args: string[], options: SpawnOptions): ChildProcess {
  return setpriv === undefined
    ? spawn(command, args, options)
    : spawn(setpriv, ['--pdeathsig', 'SIGKILL', '--', command, ...args], options);
}

const setpriv = process.platform === 'linux' ? onPath('setpriv') : undefined;

/** Whether children started by spawnTied die with this process (see docs/sandbox.md). */
export const childrenDieWithParent = setpriv !== undefined;

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Calls `onOrphaned` once this process's parent has died (it has been re-parented). `npm start`
 * execs this process directly under npm, so a `kill -9` of npm is noticed here within `intervalMs`.
 */
export function whenOrphaned(onOrphaned: () => void, intervalMs = 250): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      onOrphaned();
    }
  }, intervalMs);
  timer.unref();
}

/**
 * Stops a child (its whole process group when it was spawned detached): SIGTERM, then SIGKILL after
 * `graceMs`. Resolves once it has exited.
 */
export async function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (name: NodeJS.Signals) => {
    try {
      // A detached child leads its own process group: signal the group, so its workers stop too.
      process.kill(isGroupLeader(pid) ? -pid : pid, name);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function isGroupLeader(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}
