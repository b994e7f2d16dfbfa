import type { SourceRecord } from '../record.js';

export type FlushReason = 'count' | 'bytes' | 'linger' | 'drain';

export interface BatchLimits {
  lingerMs: number;
  maxBatchRecords: number;
  maxBatchBytes: number;
}

/**
 * The records of one topic-partition waiting to be flushed, in offset order. Pure bookkeeping: it knows when a
 * batch is due (count, bytes, or time since the oldest waiting record) and cuts batches within the bounds.
 */
export class PartitionBuffer {
  #records: SourceRecord[] = [];
  /** Arrival time (ms) of each record, parallel to #records, so the remainder of a cut keeps its age. */
  #arrivedAt: number[] = [];
  #bytes = 0;
  /** Offset expected next; records below it were already taken (a re-fetch after a seek or retry). */
  #nextOffset: bigint | undefined;

  get count(): number {
    return this.#records.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** When the oldest waiting record arrived, or undefined when empty. */
  get oldestArrivalMs(): number | undefined {
    return this.#arrivedAt[0];
  }

  /** Appends records in offset order; returns the bytes accepted (duplicates of taken offsets are dropped). */
  append(records: readonly SourceRecord[], nowMs: number): number {
    let start = 0;
    if (this.#nextOffset !== undefined) {
      while (start < records.length && BigInt(records[start]!.offset) < this.#nextOffset) start++;
    }
    let bytes = 0;
    for (let i = start; i < records.length; i++) {
      const record = records[i]!;
      this.#records.push(record);
      this.#arrivedAt.push(nowMs);
      bytes += record.sizeBytes;
    }
    if (start < records.length) this.#nextOffset = BigInt(records.at(-1)!.offset) + 1n;
    this.#bytes += bytes;
    return bytes;
  }

  /** Why a batch should be flushed now, or undefined if nothing is due yet. */
  dueReason(nowMs: number, limits: BatchLimits): FlushReason | undefined {
    if (this.#records.length === 0) return undefined;
    if (this.#records.length >= limits.maxBatchRecords) return 'count';
    if (this.#bytes >= limits.maxBatchBytes) return 'bytes';
    if (nowMs - this.#arrivedAt[0]! >= limits.lingerMs) return 'linger';
    return undefined;
  }

  /** Milliseconds until the oldest record's linger expires (0 if already due), or undefined when empty. */
  msUntilLinger(nowMs: number, limits: BatchLimits): number | undefined {
    const oldest = this.#arrivedAt[0];
    return oldest === undefined ? undefined : Math.max(0, oldest + limits.lingerMs - nowMs);
  }

  /** Cuts the next batch: at most maxBatchRecords and maxBatchBytes, but always at least one record. */
  take(limits: BatchLimits): { records: SourceRecord[]; bytes: number; oldestArrivalMs: number } {
    const oldestArrivalMs = this.#arrivedAt[0]!;
    let n = 0;
    let bytes = 0;
    while (n < this.#records.length && n < limits.maxBatchRecords) {
      const size = this.#records[n]!.sizeBytes;
      if (n > 0 && bytes + size > limits.maxBatchBytes) break;
      bytes += size;
      n++;
    }
    const records = this.#records.splice(0, n);
    this.#arrivedAt.splice(0, n);
    this.#bytes -= bytes;
    return { records, bytes, oldestArrivalMs };
  }

  /** Forgets everything, including the expected offset (after a revoke the next owner position is unknown). */
  clear(): number {
    const bytes = this.#bytes;
    this.#records = [];
    this.#arrivedAt = [];
    this.#bytes = 0;
    this.#nextOffset = undefined;
    return bytes;
  }
}
