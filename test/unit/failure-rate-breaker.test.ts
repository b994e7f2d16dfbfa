import { describe, expect, it } from 'vitest';
import { FailureRateBreaker } from '../../src/dlq/failure-rate-breaker.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('FailureRateBreaker', () => {
  it('refuses, before it is sent, the batch that would take the DLQ share over the limit, and stays open', () => {
    const time = clock();
    const breaker = new FailureRateBreaker({ maxDlqRatio: 0.05, windowMs: 60_000, minRecords: 500 }, time.now);
    expect(breaker.admit(400, 40)).toBeUndefined(); // 10 %, but only 400 records: not judged yet
    time.advance(1_000);
    expect(breaker.admit(200, 1)).toEqual({ records: 600, deadLettered: 41, ratio: 41 / 600 }); // 6.8 %: refused
    expect(breaker.open).toBe(true);
    expect(breaker.window()).toEqual({ records: 400, deadLettered: 40, ratio: 0.1 }); // the refused batch is not counted
    expect(breaker.admit(10_000, 1)).toBeDefined(); // open: everything is refused
  });

  it('a backlog batch over minRecords is judged on its own', () => {
    const breaker = new FailureRateBreaker({ maxDlqRatio: 0.05, windowMs: 60_000, minRecords: 500 });
    expect(breaker.admit(2_000, 2_000)).toEqual({ records: 2_000, deadLettered: 2_000, ratio: 1 });
  });

  it('admits at or under the limit; clean batches count through record', () => {
    const breaker = new FailureRateBreaker({ maxDlqRatio: 0.05, windowMs: 60_000, minRecords: 100 });
    for (let i = 0; i < 100; i++) expect(breaker.admit(1_000, 50)).toBeUndefined(); // exactly 5 %
    breaker.record(1_000);
    expect(breaker.window().ratio).toBeCloseTo(5_000 / 101_000);
    expect(breaker.open).toBe(false);
  });

  it('forgets what falls out of the sliding window', () => {
    const time = clock();
    const breaker = new FailureRateBreaker({ maxDlqRatio: 0.05, windowMs: 10_000, minRecords: 100 }, time.now);
    expect(breaker.admit(50, 40)).toBeUndefined(); // a burst, too few records to judge
    time.advance(11_000);
    expect(breaker.window()).toEqual({ records: 0, deadLettered: 0, ratio: 0 });
    expect(breaker.admit(1_000, 10)).toBeUndefined();
  });
});
