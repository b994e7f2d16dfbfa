import { describe, expect, it } from 'vitest';
import { chunksOf } from '../../src/dlq/dead-letter-queue.js';

const record = (bytes: number) => ({ key: null, value: Buffer.alloc(bytes), headers: { 'sluice.error.stack': 'x'.repeat(100) } });

describe('DLQ chunks', () => {
  it('keeps each request under the byte bound, in order, with at least one record each', () => {
    const records = Array.from({ length: 10 }, () => record(1_000));
    const chunks = chunksOf(records, 3_000);
    expect(chunks.flat()).toEqual(records);
    expect(chunks.map((c) => c.length)).toEqual([2, 2, 2, 2, 2]); // each record ~1.2 kB with headers and framing
    expect(chunksOf([record(10_000)], 3_000)).toHaveLength(1); // one record larger than the bound still goes
  });
});
