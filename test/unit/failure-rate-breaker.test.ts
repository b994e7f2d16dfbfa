import { describe, expect, it } from 'vitest';
import { FailureRateBreaker } from '../../src/dlq/failure-rate-breaker.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('FailureRateBreaker', () => {
  it('opens when the DLQ share goes over the limit with enough records, and stays open', () => {
    const time = clock();
    const breaker = new FailureRateBreaker({ maxDlqRatio: 0.05, windowMs: 60_000, minRecords: 500 }, time.now);
    expect(breaker.record(400, 40)).toBe(false); // 10 %, but only 400 records: not judged yet
    time.advance(1_000);
    expect(breaker.record(200, 0)).toBe(true); // 40 of 600: 6.7 %
    time.advance(1_000);
    expect(breaker.record(10_000, 0)).toBe(true);
  });

  it('stays closed at or under the limit', () => {
    const breaker = new FailureRateBreaker({ maxDlqRatio: 0.05, windowMs: 60_000, minRecords: 100 });
    for (let i = 0; i < 100; i++) expect(breaker.record(1_000, 50)).toBe(false); // exactly 5 %
    expect(breaker.window().ratio).toBeCloseTo(0.05);
  });

  it('forgets what falls out of the sliding window', () => {
    const time = clock();
    const breaker = new FailureRateBreaker({ maxDlqRatio: 0.05, windowMs: 10_000, minRecords: 100 }, time.now);
    breaker.record(50, 40); // a burst, too few records to judge
    time.advance(11_000);
    expect(breaker.window()).toEqual({ records: 0, deadLettered: 0, ratio: 0 });
    expect(breaker.record(1_000, 10)).toBe(false);
  });
});
