import { describe, expect, it } from 'vitest';
import { PartitionBuffer } from '../../src/batcher/partition-buffer.js';
import type { SourceRecord } from '../../src/record.js';

const limits = { lingerMs: 200, maxBatchRecords: 3, maxBatchBytes: 100 };

function records(from: number, count: number, sizeBytes = 10): SourceRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    topic: 't',
    partition: 0,
    offset: String(from + i),
    key: null,
    value: Buffer.alloc(sizeBytes),
    timestamp: '0',
    headers: {},
    sizeBytes,
  }));
}

describe('PartitionBuffer', () => {
  it('is due by count, by bytes, or once the oldest record has waited lingerMs', () => {
    const byCount = new PartitionBuffer();
    byCount.append(records(0, 2), 1_000);
    expect(byCount.dueReason(1_000, limits)).toBeUndefined();
    expect(byCount.msUntilLinger(1_050, limits)).toBe(150);
    byCount.append(records(2, 1), 1_050);
    expect(byCount.dueReason(1_050, limits)).toBe('count');

    const byBytes = new PartitionBuffer();
    byBytes.append(records(0, 1, 100), 0);
    expect(byBytes.dueReason(0, limits)).toBe('bytes');

    const byTime = new PartitionBuffer();
    byTime.append(records(0, 1), 0);
    expect(byTime.dueReason(199, limits)).toBeUndefined();
    expect(byTime.dueReason(200, limits)).toBe('linger');
  });

  it('cuts batches within both bounds, in offset order, and the remainder keeps its age', () => {
    const buffer = new PartitionBuffer();
    buffer.append(records(0, 2, 40), 0);
    buffer.append(records(2, 3, 40), 100);
    const first = buffer.take(limits);
    expect(first.records.map((r) => r.offset)).toEqual(['0', '1']); // a third would pass 100 bytes
    expect(first.oldestArrivalMs).toBe(0);
    expect(buffer.oldestArrivalMs).toBe(100);
    expect(buffer.bytes).toBe(120);
    expect(buffer.take(limits).records.map((r) => r.offset)).toEqual(['2', '3']);
    expect(buffer.take(limits).records.map((r) => r.offset)).toEqual(['4']);
    expect(buffer.count).toBe(0);
  });

  it('always takes at least one record, even one larger than maxBatchBytes', () => {
    const buffer = new PartitionBuffer();
    buffer.append(records(0, 2, 500), 0);
    expect(buffer.take(limits).records).toHaveLength(1);
  });

  it('drops records below the next expected offset (a re-delivered fetch), and forgets it on clear', () => {
    const buffer = new PartitionBuffer();
    buffer.append(records(0, 3), 0);
    buffer.take(limits);
    expect(buffer.append(records(1, 4), 0)).toBe(20); // offsets 3 and 4 are new
    expect(buffer.take(limits).records.map((r) => r.offset)).toEqual(['3', '4']);
    buffer.clear();
    buffer.append(records(0, 1), 0);
    expect(buffer.count).toBe(1);
  });
});
