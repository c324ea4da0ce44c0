import { checkInvariants } from '../sandbox/invariants.js';
import { defaultRate } from '../sandbox/iot/behaviour.js';
import {
  countsBetween,
  type OperationBound,
  type OperationCounts,
  okPerRegistration,
  quotaBound,
  retryDelayMs,
} from './arithmetic.js';
import type { BenchSandbox } from './bench-sandbox.js';
import { type Answer, type Device, makeDevices, register } from './devices.js';

/**
 * Registrations at once before the burst, not counted: as many function instances as the door lets
 * in at once, warm, as on a stage that is serving a line. Cold, the sandbox starts them one after
 * another on its two cores while the burst's first thousand requests arrive, and its first seconds
 * register a fraction of what AWS IoT allows (in AWS, instances start in parallel, in well under a
 * second).
 */
export const WARM_UP = 10;

export interface BurstOptions {
  devices: number;
  /** Registrations before the burst (default WARM_UP). */
  warmUp?: number;
  /** Requests in flight at most (a device waiting to retry holds none). */
  pool: number;
  deadlineSeconds: number;
  /**
   * IoT calls per registration, from the depth measurement (undisturbed registrations); when
   * absent, from the burst's own successful calls per registered device.
   */
  iotCallsPerRegistration?: Record<string, number>;
}

export interface BurstResult {
  devices: number;
  /** Until the last device was registered; null when some were not by the deadline. */
  seconds: number | null;
  quotaBoundSeconds: number;
  ratio: number | null;
  wastedCreations: number;
  violations: number;
  client5xx: number;
  registered: number;
  /** Devices that got an answer they may not retry (or reached the deadline), by what they got. */
  gaveUp: Record<string, number>;
  requests: number;
  /** Every answer the devices got, as "status code". */
  answers: Record<string, number>;
  /** The IoT calls of the burst per operation and outcome. */
  iotCalls: OperationCounts;
  /** Per operation: the least time its quota allows, slowest first. */
  bound: OperationBound[];
  boundFrom: 'depth' | 'burst';
  certificatesDeleted: number;
  thingsDeleted: number;
  /** The first violations the invariant checker found, if any. */
  violationList: string[];
}

/**
 * A thousand devices registering at once through the front door, with the stage's throttling, the
 * function's reserved concurrency and AWS IoT's default quotas; every device retries what it may
 * (429, 5xx, 409 with Retry-After, no answer) after the Retry-After it was sent, until the deadline.
 */
export async function measureBurst(
  bench: BenchSandbox,
  options: BurstOptions,
  log: (line: string) => void,
): Promise<BurstResult> {
  const tokens = await bench.mintClaims('BENCH-BURST', options.devices);
  const devices = makeDevices('BENCH-BURST', tokens);
  await warmUp(bench, options.warmUp ?? WARM_UP, log);
  await bench.setBehaviour({}); // the defaults, with full buckets
  const before = await bench.calls();
  log(`burst: ${devices.length} devices, ${options.pool} requests in flight at most`);
  const run = await runDevices(bench.info.apiUrl, devices, options, log);
  const after = await bench.calls();

  const iotCalls = countsBetween(before.operations, after.operations);
  const registered = run.registeredAt.length;
  const perRegistration = options.iotCallsPerRegistration ?? okPerRegistration(iotCalls, registered);
  const bound = quotaBound(perRegistration, options.devices, defaultRate);
  const quotaBoundSeconds = bound[0]?.seconds ?? 0;
  const seconds = registered === devices.length ? Math.max(...run.registeredAt) : null;
  const certificatesDeleted = after.registry.certificatesDeleted - before.registry.certificatesDeleted;
  const thingsDeleted = after.registry.thingsDeleted - before.registry.thingsDeleted;

  log('burst: checking the invariants');
  await bench.setBehaviour({ '*': { ratePerSecond: 0 } }); // the checker's own calls are not the burst's
  const violationList = await checkInvariants({
    dynamo: bench.dynamo,
    tables: bench.info.tables,
    iot: bench.iot,
    policyName: bench.info.policyName,
  });
  await bench.setBehaviour({});
  return {
    devices: options.devices,
    seconds,
    quotaBoundSeconds,
    ratio: seconds === null || quotaBoundSeconds === 0 ? null : seconds / quotaBoundSeconds,
    wastedCreations: certificatesDeleted + thingsDeleted,
    violations: violationList.length,
    client5xx: Object.entries(run.answers)
      .filter(([answer]) => Number(answer.split(' ')[0]) >= 500)
      .reduce((sum, [, count]) => sum + count, 0),
    registered,
    gaveUp: run.gaveUp,
    requests: run.requests,
    answers: run.answers,
    iotCalls,
    bound,
    boundFrom: options.iotCallsPerRegistration ? 'depth' : 'burst',
    certificatesDeleted,
    thingsDeleted,
    violationList: violationList.slice(0, 10),
  };
}

async function warmUp(bench: BenchSandbox, count: number, log: (line: string) => void): Promise<void> {
  if (count === 0) return;
  log(`burst: warming the function up with ${count} registrations at once (not counted)`);
  await bench.setBehaviour({ '*': { ratePerSecond: 0 } });
  const devices = makeDevices('BENCH-WARM', await bench.mintClaims('BENCH-WARM', count));
  const answers = await Promise.all(devices.map((device) => register(bench.info.apiUrl, device)));
  const failed = answers.filter((answer) => answer.status !== 201);
  if (failed.length > 0)
    throw new Error(`warm-up registrations answered ${failed.map((a) => a.status).join(', ')}`);
  // The door's bucket refills (its burst at its rate) before the burst starts.
  await sleep(2_000);
}

interface Run {
  /** Seconds from the start at which each registered device got its 200/201. */
  registeredAt: number[];
  gaveUp: Record<string, number>;
  requests: number;
  answers: Record<string, number>;
}

async function runDevices(
  apiUrl: string,
  devices: Device[],
  options: BurstOptions,
  log: (line: string) => void,
): Promise<Run> {
  const run: Run = { registeredAt: [], gaveUp: {}, requests: 0, answers: {} };
  const slots = new Slots(options.pool);
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const progress = setInterval(() => {
    log(`burst: ${elapsed().toFixed(0)} s, ${run.registeredAt.length} registered, ${run.requests} requests`);
  }, 15_000);
  const count = (record: Record<string, number>, key: string) => {
    record[key] = (record[key] ?? 0) + 1;
  };
  const drive = async (device: Device) => {
    for (let attempt = 1; ; attempt++) {
      if (elapsed() > options.deadlineSeconds) return count(run.gaveUp, 'deadline');
      const release = await slots.take();
      let answer: Answer | undefined;
      try {
        answer = await register(apiUrl, device);
      } catch (error) {
        count(run.answers, `no answer (${(error as Error).name})`);
      } finally {
        release();
        run.requests += 1;
      }
      if (answer) count(run.answers, `${answer.status} ${answer.code}`.trim());
      if (answer && (answer.status === 200 || answer.status === 201)) {
        run.registeredAt.push(elapsed());
        return;
      }
      if (answer && !mayRetry(answer)) return count(run.gaveUp, `${answer.status} ${answer.code}`);
      await sleep(retryDelayMs(answer?.retryAfterSeconds, attempt, Math.random()));
    }
  };
  try {
    await Promise.all(devices.map(drive));
  } finally {
    clearInterval(progress);
  }
  return run;
}

/** What a device tries again: throttling, server errors, a registration racing itself. */
function mayRetry(answer: Answer): boolean {
  return (
    answer.status === 429 ||
    answer.status >= 500 ||
    (answer.status === 409 && answer.retryAfterSeconds !== undefined)
  );
}

/** At most `size` holders at once; the others wait in order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async take(): Promise<() => void> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    return () => {
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
