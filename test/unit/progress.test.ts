import { describe, expect, it } from 'vitest';
import { Progress } from '../../src/observability/progress.js';

describe('Progress', () => {
  it('after a rebalance, lag and committed offsets cover only the partitions this member owns', () => {
    const progress = new Progress();
    for (const partition of [0, 1, 2]) {
      progress.observeHighWatermark('orders', partition, '100');
      progress.observeCommit('orders', partition, '40');
    }
    expect(progress.lag()).toBe(180);
    progress.retain([{ topic: 'orders', partitions: [1] }]);
    expect(progress.lag()).toBe(60);
    expect(progress.committedOffsets()).toEqual({ 'orders:1': '40' });
    progress.retain([]);
    expect(progress.committedOffsets()).toEqual({});
  });
});
