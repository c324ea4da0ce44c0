/** The benchmark's arithmetic, kept pure so that test/unit/bench.test.ts can check it. */

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** An AWS call seen at one of the delaying layers (the DynamoDB proxy or the IoT emulator). */
export interface TimedCall {
  operation: string;
  /** Epoch milliseconds when the call reached the layer, before its delay. */
  startedAt: number;
}

/**
 * Groups one registration's calls into sequential waves. Every call is held `latencyMs` before it is
 * answered, so a call that waits for another's answer starts at least `latencyMs` after it, while
 * calls sent together start within a few milliseconds: a call joins the current wave if it starts
 * less than half the latency after the wave's first call.
 */
export function waves<T extends TimedCall>(calls: T[], latencyMs: number): T[][] {
  const grouped: T[][] = [];
  let waveStart = Number.NEGATIVE_INFINITY;
  for (const call of [...calls].sort((a, b) => a.startedAt - b.startedAt)) {
    const current = grouped.at(-1);
    if (current && call.startedAt - waveStart < latencyMs / 2) current.push(call);
    else {
      grouped.push([call]);
      waveStart = call.startedAt;
    }
  }
  return grouped;
}

/** "GetItem+GetItem → TransactWriteItems → …": the operations of each wave, in order. */
export function describeWaves(grouped: TimedCall[][]): string {
  return grouped.map((wave) => wave.map((call) => call.operation).join('+')).join(' → ');
}

export interface OperationBound {
  operation: string;
  callsPerRegistration: number;
  ratePerSecond: number;
  /** devices × callsPerRegistration / ratePerSecond. */
  seconds: number;
}

/**
 * The least time the IoT quotas allow for `devices` registrations: each operation's calls
 * (devices × calls per registration) at its rate; the slowest operation bounds the whole. Sorted
 * slowest first.
 */
export function quotaBound(
  callsPerRegistration: Record<string, number>,
  devices: number,
  rateOf: (operation: string) => number,
): OperationBound[] {
  return Object.entries(callsPerRegistration)
    .filter(([, calls]) => calls > 0)
    .map(([operation, calls]) => ({
      operation,
      callsPerRegistration: calls,
      ratePerSecond: rateOf(operation),
      seconds: (devices * calls) / rateOf(operation),
    }))
    .sort((a, b) => b.seconds - a.seconds);
}

/** Calls answered `ok` per operation, divided by the registrations that made them. */
export function okPerRegistration(counts: OperationCounts, registrations: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts)
      .filter(([, outcomes]) => (outcomes.ok ?? 0) > 0)
      .map(([operation, outcomes]) => [operation, (outcomes.ok ?? 0) / registrations]),
  );
}

/** Calls per operation and outcome between two /_sandbox/calls readings. */
export type OperationCounts = Record<string, Record<string, number>>;

export function countsBetween(before: OperationCounts, after: OperationCounts): OperationCounts {
  const delta: OperationCounts = {};
  for (const [operation, outcomes] of Object.entries(after)) {
    for (const [outcome, count] of Object.entries(outcomes)) {
      const difference = count - (before[operation]?.[outcome] ?? 0);
      if (difference > 0) delta[operation] = { ...delta[operation], [outcome]: difference };
    }
  }
  return delta;
}

/** A device's longest wait between tries when the server says nothing (HTTP API's own 429 and 500). */
export const MAX_BACKOFF_MS = 8_000;

/**
 * How long a device waits before trying again: the Retry-After the server sent, stretched by up to
 * half of itself so that devices told the same thing do not all come back at once; without one,
 * "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): anywhere between 0 and
 * 1 s doubling per attempt, up to MAX_BACKOFF_MS.
 */
export function retryDelayMs(retryAfterSeconds: number | undefined, attempt: number, random: number): number {
  if (retryAfterSeconds !== undefined) return retryAfterSeconds * 1000 * (1 + random / 2);
  return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.max(0, attempt - 1)) * random;
}
