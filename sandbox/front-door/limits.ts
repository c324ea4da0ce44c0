/**
 * The token bucket API Gateway throttles with (AWS: "Throttle requests to your HTTP APIs"): a
 * request takes a token; the bucket holds `burst` tokens and refills at `rate` per second.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = this.now();
  }

  take(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * A function's reserved concurrency: at most `limit` executions at once. An execution holds its
 * slot until the function finishes, even after the front door has stopped waiting for it, as in
 * Lambda.
 */
export class ConcurrencyLimit {
  private running = 0;

  constructor(readonly limit: number) {}

  tryAcquire(): (() => void) | undefined {
    if (this.running >= this.limit) return undefined;
    this.running += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running -= 1;
    };
  }

  get inFlight(): number {
    return this.running;
  }
}
