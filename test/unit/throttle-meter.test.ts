import { describe, expect, it } from 'vitest';
import { ThrottleMeter } from '../../shared/iot/throttle-meter.js';

describe('the Retry-After a throttled device is told', () => {
  it('is the throttled calls of the last 10 s over the rate its calls went through', () => {
    let now = 0;
    const meter = new ThrottleMeter(() => now);
    for (let i = 0; i < 40; i++) meter.record(false); // 4 a second over the window
    for (let i = 0; i < 20; i++) meter.record(true);

    expect(meter.retryAfterSeconds()).toBe(5);
    now += 10_001; // all of it out of the window
    expect(meter.retryAfterSeconds()).toBe(1);
  });

  it("tells a cold container's one throttled call (and its patient tries) a few seconds, not half a minute", () => {
    const meter = new ThrottleMeter(() => 0);
    for (let i = 0; i < 3; i++) meter.record(true);

    expect(meter.retryAfterSeconds()).toBe(3);
  });

  it('never says more than 10 s', () => {
    const meter = new ThrottleMeter(() => 0);
    for (let i = 0; i < 500; i++) meter.record(true);

    expect(meter.retryAfterSeconds()).toBe(10);
  });
});
