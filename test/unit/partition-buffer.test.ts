import { describe, expect, it } from 'vitest';
import { PartitionBuffer } from '../../src/batcher/partition-buffer.js';
import type { FetchedRange, SourceRecord } from '../../src/record.js';

const limits = { lingerMs: 200, maxBatchRecords: 3, maxBatchBytes: 100 };

function recordsAt(offsets: number[], sizeBytes = 10): SourceRecord[] {
  return offsets.map((offset) => ({
    topic: 't',
    partition: 0,
    offset: String(offset),
    key: null,
    value: Buffer.alloc(sizeBytes),
    timestamp: '0',
    headers: {},
    sizeBytes,
  }));
}

/** A fetched range of `count` contiguous records from `from`. */
function records(from: number, count: number, sizeBytes = 10): FetchedRange {
  const offsets = Array.from({ length: count }, (_, i) => from + i);
  return { fromOffset: String(from), toOffset: String(from + count), records: recordsAt(offsets, sizeBytes) };
}

/** A fetched range [from, to) holding records at `offsets` only (the rest: control records, aborted, compacted). */
function range(from: number, to: number, offsets: number[]): FetchedRange {
  return { fromOffset: String(from), toOffset: String(to), records: recordsAt(offsets) };
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

  it('drops records already covered (a fetch made again), and starts anew from the position a reset gives', () => {
    const buffer = new PartitionBuffer();
    buffer.append(records(0, 3), 0);
    buffer.take(limits);
    expect(buffer.append(records(1, 4), 0)).toBe(20); // offsets 3 and 4 are new
    expect(buffer.take(limits).records.map((r) => r.offset)).toEqual(['3', '4']);
    buffer.reset('0');
    buffer.append(records(0, 1), 0);
    expect(buffer.count).toBe(1);
  });

  it('covers offsets that hold no record: each batch starts where the previous one ended, the last ends at the range end', () => {
    const buffer = new PartitionBuffer();
    buffer.reset('10');
    // 10, 11 records; 12 a control record; 13 aborted; 14 record; 15 control record.
    expect(buffer.append(range(10, 16, [10, 11, 14]), 0)).toBe(30);
    const first = buffer.take({ ...limits, maxBatchRecords: 2 });
    expect([first.fromOffset, first.toOffset, first.records.map((r) => r.offset)]).toEqual(['10', '14', ['10', '11']]);
    const second = buffer.take(limits);
    expect([second.fromOffset, second.toOffset, second.records.map((r) => r.offset)]).toEqual(['14', '16', ['14']]);
    expect(buffer.hasPending).toBe(false);
    expect(buffer.position).toBe('16');
  });

  it('a range of only control records is pending too, due after lingerMs, and cut as a batch without records', () => {
    const buffer = new PartitionBuffer();
    buffer.reset('5');
    expect(buffer.append(range(5, 8, []), 1_000)).toBe(0);
    expect(buffer.hasPending).toBe(true);
    expect(buffer.dueReason(1_100, limits)).toBeUndefined();
    expect(buffer.dueReason(1_200, limits)).toBe('linger');
    const batch = buffer.take(limits);
    expect([batch.fromOffset, batch.toOffset, batch.records]).toEqual(['5', '8', []]);
    expect(buffer.hasPending).toBe(false);
  });

  it('refuses a range that would skip offsets (ahead) or that lies inside what is covered (behind)', () => {
    const buffer = new PartitionBuffer();
    buffer.reset('100');
    expect(buffer.append(range(101, 110, [101]), 0)).toEqual({ refused: 'ahead', expectedOffset: '100' });
    expect(buffer.append(range(0, 10, [0, 9]), 0)).toEqual({ refused: 'behind', expectedOffset: '100' });
    expect(buffer.count).toBe(0);
    expect(buffer.append(range(100, 110, [103]), 0)).toBe(10);
    expect(buffer.position).toBe('110');
  });

  it('with no position known, the first range sets it', () => {
    const buffer = new PartitionBuffer();
    expect(buffer.position).toBeUndefined();
    buffer.append(range(42, 45, [44]), 0);
    const batch = buffer.take(limits);
    expect([batch.fromOffset, batch.toOffset]).toEqual(['42', '45']);
  });
});
