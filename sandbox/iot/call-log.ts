/** One call the emulator answered: when it arrived and how it ended (`ok` or the AWS error type). */
export interface CallEntry {
  operation: string;
  /** Epoch milliseconds when the request arrived, before any configured latency. */
  startedAt: number;
  outcome: string;
}

/**
 * The calls the emulator answered, counted per operation and outcome since it started (the
 * behaviour's counters are reset with the behaviour; these never are), and the latest calls with
 * their arrival times. `npm run bench` reads it (GET /_sandbox/calls) to count the calls a workload
 * made, what was throttled, and the sequential waves a registration's calls came in.
 */
export class CallLog {
  private readonly totals = new Map<string, Map<string, number>>();
  private entries: CallEntry[] = [];

  /** Keeps at least the latest `keep` calls (at most twice as many). */
  constructor(private readonly keep = 20_000) {}

  record(entry: CallEntry): void {
    const outcomes = this.totals.get(entry.operation) ?? new Map<string, number>();
    outcomes.set(entry.outcome, (outcomes.get(entry.outcome) ?? 0) + 1);
    this.totals.set(entry.operation, outcomes);
    this.entries.push(entry);
    if (this.entries.length > 2 * this.keep) this.entries = this.entries.slice(-this.keep);
  }

  /** Totals per operation and outcome; with `since` (epoch ms), also the kept calls that arrived from then on. */
  snapshot(since?: number): { operations: Record<string, Record<string, number>>; calls?: CallEntry[] } {
    return {
      operations: Object.fromEntries(
        [...this.totals].map(([operation, outcomes]) => [operation, Object.fromEntries(outcomes)]),
      ),
      ...(since === undefined ? {} : { calls: this.entries.filter((entry) => entry.startedAt >= since) }),
    };
  }
}
