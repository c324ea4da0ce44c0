/** How far back the meter looks. */
export const THROTTLE_WINDOW_MS = 10_000;
const MAX_RETRY_AFTER_SECONDS = 10;

/**
 * When to tell a device turned away by AWS IoT throttling to come back, from what this container
 * observed in the last 10 s: the calls that were throttled divided by the rate at which its calls
 * went through (at least one a second: a Lambda container handles one request at a time, so a cold
 * one has seen little), that is, when the queue it saw would have drained; between 1 and 10 s. Per
 * container: an estimate, not a reservation.
 */
export class ThrottleMeter {
  private readonly calls: { at: number; throttled: boolean }[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  record(throttled: boolean): void {
    const at = this.now();
    this.calls.push({ at, throttled });
    while ((this.calls[0]?.at ?? at) <= at - THROTTLE_WINDOW_MS) this.calls.shift();
  }

  retryAfterSeconds(): number {
    const since = this.now() - THROTTLE_WINDOW_MS;
    const recent = this.calls.filter((call) => call.at > since);
    const throttled = recent.filter((call) => call.throttled).length;
    const perSecond = Math.max(1, (recent.length - throttled) / (THROTTLE_WINDOW_MS / 1000));
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(throttled / perSecond)));
  }
}
