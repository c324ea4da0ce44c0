import {
  countsBetween,
  describeWaves,
  median,
  okPerRegistration,
  type TimedCall,
  waves,
} from './arithmetic.js';
import type { BenchSandbox } from './bench-sandbox.js';
import { type Device, makeDevices, register } from './devices.js';
import {
  createNaiveTables,
  type NaiveCreated,
  naiveRegistration,
  removeNaiveLeftovers,
  seedNaiveClaim,
} from './naive.js';

export interface DepthOptions {
  latencyMs: number;
  samples: number;
  warmups: number;
}

export interface Sequence {
  medianMs: number;
  /** medianMs / latencyMs. */
  ratio: number;
  /** Sequential waves of AWS calls, median over the samples. */
  roundTrips: number;
  /** The waves of the median sample, e.g. "GetItem+GetItem → TransactWriteItems → …". */
  waves: string;
  /**
   * When each wave of the median sample started, in ms after the request was sent, then when the
   * answer came: the gap between two beyond the latency is the slower call's own time plus the
   * handler's.
   */
  timelineMs: number[];
}

export interface DepthResult extends Sequence {
  latencyMs: number;
  samples: number;
  /** POST /register with an empty body (refused before any AWS call): the path's own cost. */
  overheadMs: number;
  /** AWS calls per registration by operation (IoT answered ok, DynamoDB requests), as the saga made them. */
  callsPerRegistration: Record<string, number>;
  /** The IoT ones alone: what the burst's quota bound is computed from. */
  iotCallsPerRegistration: Record<string, number>;
  /** The same AWS calls made strictly one after another. */
  naive: Sequence;
  /** The saga's median over the naive replay's. */
  sagaOverNaive: number;
}

interface Timed {
  ms: number;
  /** Epoch ms when the request was sent. */
  sentAt: number;
  calls: (TimedCall & { layer: 'dynamodb' | 'iot' })[];
}

/**
 * How many sequential AWS round trips a registration costs: registrations one at a time through the
 * front door (a warm container) with every IoT call and every DynamoDB request answered `latencyMs`
 * after it arrived (the emulators' own work done meanwhile: AWS's latency includes AWS's work), their
 * calls timed at the two delaying layers; then the naive replay, the same calls made strictly one
 * after another, against the same delayed endpoints.
 */
export async function measureDepth(
  bench: BenchSandbox,
  options: DepthOptions,
  log: (line: string) => void,
): Promise<DepthResult> {
  const { latencyMs, samples, warmups } = options;
  const devices = makeDevices('BENCH-DEPTH', await bench.mintClaims('BENCH-DEPTH', warmups + samples));
  await bench.setBehaviour({ '*': { answerAfterMs: latencyMs } });
  bench.proxy.delayMs = latencyMs;
  try {
    for (const device of devices.slice(0, warmups)) await registerOrFail(bench.info.apiUrl, device);
    const overheadMs = median(await repeat(samples, () => emptyRequestMs(bench.info.apiUrl)));
    // Those came back to back and emptied the register route's bucket (burst 10, 15/s): let it refill,
    // or the first timed registration is the door's 429.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = await bench.calls();
    const saga: Timed[] = [];
    for (const device of devices.slice(warmups)) {
      saga.push(await timed(bench, () => registerOrFail(bench.info.apiUrl, device)));
    }
    const after = await bench.calls();
    const sagaSequence = summary(saga, latencyMs);
    log(`depth: saga ${sagaSequence.medianMs.toFixed(0)} ms (median of ${samples}); now the naive replay`);
    const naive = summary(await measureNaive(bench, samples), latencyMs);
    const iotCallsPerRegistration = okPerRegistration(
      countsBetween(before.operations, after.operations),
      samples,
    );
    const dynamoCalls = saga.flatMap((sample) => sample.calls.filter((call) => call.layer === 'dynamodb'));
    return {
      latencyMs,
      samples,
      ...sagaSequence,
      overheadMs,
      callsPerRegistration: { ...countOperations(dynamoCalls, samples), ...iotCallsPerRegistration },
      iotCallsPerRegistration,
      naive,
      sagaOverNaive: sagaSequence.medianMs / naive.medianMs,
    };
  } finally {
    bench.proxy.delayMs = 0;
    await bench.setBehaviour({});
  }
}

/** Runs `work` and collects the calls both delaying layers saw meanwhile (nothing else runs then). */
async function timed(bench: BenchSandbox, work: () => Promise<unknown>): Promise<Timed> {
  bench.proxy.recording = true;
  bench.proxy.takeCalls();
  const since = Date.now();
  const started = performance.now();
  try {
    await work();
  } finally {
    bench.proxy.recording = false;
  }
  const ms = performance.now() - started;
  const iot = (await bench.calls(since)).calls ?? [];
  return {
    ms,
    sentAt: since,
    calls: [
      ...bench.proxy.takeCalls().map((call) => ({ ...call, layer: 'dynamodb' as const })),
      ...iot.map(({ operation, startedAt }) => ({ operation, startedAt, layer: 'iot' as const })),
    ],
  };
}

async function measureNaive(bench: BenchSandbox, samples: number): Promise<Timed[]> {
  await createNaiveTables(bench.dynamo);
  const tokens = await repeat(samples + 1, () => seedNaiveClaim(bench.dynamo));
  const [warmUp, ...devices] = makeDevices('BENCH-NAIVE', tokens);
  const target = { dynamo: bench.throughProxy, iot: bench.iot, policyName: bench.info.policyName };
  const created: NaiveCreated[] = [];
  try {
    // One unmeasured run first: connections open and code warm, as for the saga's warm container.
    created.push(await naiveRegistration(target, warmUp as Device));
    const samplesTimed: Timed[] = [];
    for (const device of devices) {
      samplesTimed.push(
        await timed(bench, async () => created.push(await naiveRegistration(target, device))),
      );
    }
    return samplesTimed;
  } finally {
    // Without latency or quotas: the replay leaves nothing behind for the burst's invariant check.
    await bench.setBehaviour({ '*': { ratePerSecond: 0 } });
    await removeNaiveLeftovers(bench.iot, bench.info.policyName, created);
  }
}

function summary(samples: Timed[], latencyMs: number): Sequence {
  const medianMs = median(samples.map((sample) => sample.ms));
  const grouped = samples.map((sample) => waves(sample.calls, latencyMs));
  const middle = samples.reduce(
    (best, sample, i) =>
      Math.abs(sample.ms - medianMs) < Math.abs((samples[best] as Timed).ms - medianMs) ? i : best,
    0,
  );
  return {
    medianMs,
    ratio: medianMs / latencyMs,
    roundTrips: Math.round(median(grouped.map((sample) => sample.length))),
    waves: describeWaves(grouped[middle] ?? []),
    timelineMs: [
      ...(grouped[middle] ?? []).map((wave) => (wave[0]?.startedAt ?? 0) - (samples[middle]?.sentAt ?? 0)),
      Math.round(samples[middle]?.ms ?? 0),
    ],
  };
}

async function registerOrFail(apiUrl: string, device: Device): Promise<void> {
  const answer = await register(apiUrl, device);
  if (answer.status !== 201) {
    throw new Error(`registration of ${device.serialNumber} answered ${answer.status} ${answer.code}`);
  }
}

/** The front door and the handler alone: a request refused before any AWS call. */
async function emptyRequestMs(apiUrl: string): Promise<number> {
  for (;;) {
    const started = performance.now();
    const response = await fetch(`${apiUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    await response.text();
    // The register route's own throttling (a burst of 10): these samples come back to back.
    if (response.status === 429) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    if (response.status !== 400) throw new Error(`POST /register {} answered ${response.status}, not 400`);
    return performance.now() - started;
  }
}

async function repeat<T>(times: number, run: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < times; i++) results.push(await run());
  return results;
}

function countOperations(calls: TimedCall[], registrations: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const call of calls) counts[call.operation] = (counts[call.operation] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).map(([operation, n]) => [operation, n / registrations]));
}
