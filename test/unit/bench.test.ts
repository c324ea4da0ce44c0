import { describe, expect, it } from 'vitest';
import { countsBetween, median, quotaBound, retryDelayMs, waves } from '../../bench/arithmetic.js';
import { defaultRate } from '../../sandbox/iot/behaviour.js';

describe("the benchmark's arithmetic", () => {
  it('bounds a burst by its slowest IoT operation: 1,000 registrations of one UpdateCertificate at 10/s take 100 s', () => {
    const perRegistration = { CreateCertificateFromCsr: 1, CreateThing: 1, UpdateCertificate: 1 };

    const bound = quotaBound(perRegistration, 1000, defaultRate);

    expect(bound[0]).toEqual({
      operation: 'UpdateCertificate',
      callsPerRegistration: 1,
      ratePerSecond: 10,
      seconds: 100,
    });
    expect(bound.map((b) => b.seconds)).toEqual([100, 1000 / 15, 1000 / 15]);
  });

  it('counts an operation called twice a registration twice against its quota', () => {
    const bound = quotaBound({ AttachPolicy: 2, UpdateCertificate: 1 }, 300, defaultRate);

    expect(bound[0]).toMatchObject({ operation: 'AttachPolicy', seconds: 40 });
  });

  it('groups calls that start within half the latency of a wave’s first call into that wave', () => {
    const calls = [
      { operation: 'GetItem', startedAt: 1000 },
      { operation: 'GetItem', startedAt: 1003 },
      { operation: 'TransactWriteItems', startedAt: 1105 },
      { operation: 'CreateThing', startedAt: 1212 },
      { operation: 'CreateCertificateFromCsr', startedAt: 1210 },
    ];

    const grouped = waves(calls, 100);

    expect(grouped.map((wave) => wave.map((call) => call.operation))).toEqual([
      ['GetItem', 'GetItem'],
      ['TransactWriteItems'],
      ['CreateCertificateFromCsr', 'CreateThing'],
    ]);
  });

  it('takes the middle of an odd count and the mean of the two middles of an even one', () => {
    expect([median([3, 1, 2]), median([4, 1, 3, 2])]).toEqual([2, 2.5]);
  });

  it('subtracts two call counts per operation and outcome, keeping only what changed', () => {
    const before = { CreateThing: { ok: 5 }, UpdateCertificate: { ok: 2 } };
    const after = { CreateThing: { ok: 9, ThrottlingException: 3 }, UpdateCertificate: { ok: 2 } };

    expect(countsBetween(before, after)).toEqual({ CreateThing: { ok: 4, ThrottlingException: 3 } });
  });

  it('waits at least the Retry-After a device was sent, and without one up to 1 s doubling to 8 s (full jitter)', () => {
    expect([retryDelayMs(2, 1, 0), retryDelayMs(2, 1, 1)]).toEqual([2000, 3000]);
    expect([1, 2, 6].map((attempt) => retryDelayMs(undefined, attempt, 1))).toEqual([1000, 2000, 8_000]);
    expect(retryDelayMs(undefined, 6, 0.5)).toBe(4000);
    expect(retryDelayMs(undefined, 1, 0)).toBe(0);
  });
});
