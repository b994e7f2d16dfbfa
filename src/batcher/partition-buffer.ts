import type { FetchedRange, SourceRecord } from '../record.js';

export type FlushReason = 'count' | 'bytes' | 'linger' | 'drain';

export interface BatchLimits {
  lingerMs: number;
  maxBatchRecords: number;
  maxBatchBytes: number;
}

/** A batch cut from the buffer: its records, and the offsets [fromOffset, toOffset) it covers. */
export interface BufferedBatch {
  records: SourceRecord[];
  fromOffset: string;
  toOffset: string;
  bytes: number;
  /** When the oldest record (or, with none, the range) arrived. */
  oldestArrivalMs: number;
}

/** Why a fetched range was not taken: it leaves a hole after what is covered, or lies inside it. */
export type RangeRefusal = { refused: 'ahead' | 'behind'; expectedOffset: string };

/**
 * The records of one topic-partition waiting to be flushed, and the offsets they cover. This is where the rule
 * "nothing skipped, nothing repeated" is kept for a partition within this member: covered ranges chain, each one
 * starting where the one before it ended, so every batch cut from here starts exactly where the previous batch
 * ended, whatever offsets held no record in between (control records, aborted transactions, compaction).
 *
 * Pure bookkeeping: it also knows when a batch is due (count, bytes, or time since the oldest waiting record or
 * range) and cuts batches within the bounds.
 */
export class PartitionBuffer {
  #records: SourceRecord[] = [];
  /** Arrival time (ms) of each record, parallel to #records, so the remainder of a cut keeps its age. */
  #arrivedAt: number[] = [];
  #bytes = 0;
  /** Start of what is buffered: where the last batch taken ended. Undefined: no position known yet. */
  #start: bigint | undefined;
  /** End of the covered range: the offset the next fetched range must reach. */
  #end: bigint | undefined;
  /** Arrival of covered offsets that hold no record (only filtered ones), when nothing else was waiting. */
  #emptySinceMs: number | undefined;

  get count(): number {
    return this.#records.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Where what is buffered starts (where the last batch taken ended), if known. */
  get start(): string | undefined {
    return this.#start?.toString();
  }

  /** Where the next fetched range must start, if known. */
  get position(): string | undefined {
    return this.#end?.toString();
  }

  /** Whether anything waits to be flushed: records, or covered offsets that hold none. */
  get hasPending(): boolean {
    return this.#records.length > 0 || (this.#end !== undefined && this.#end > this.#start!);
  }

  /** When the oldest waiting record or range arrived, or undefined when nothing waits. */
  get oldestArrivalMs(): number | undefined {
    // An empty extension is only ever recorded while nothing else waited, so it is the oldest when present.
    return this.hasPending ? (this.#emptySinceMs ?? this.#arrivedAt[0]) : undefined;
  }

  /** Forgets everything and starts at `offset` (where the offsets stored with the data end), or at no known position. */
  reset(offset?: string): number {
    const bytes = this.#bytes;
    this.#records = [];
    this.#arrivedAt = [];
    this.#bytes = 0;
    this.#start = offset === undefined ? undefined : BigInt(offset);
    this.#end = this.#start;
    this.#emptySinceMs = undefined;
    return bytes;
  }

  /**
   * Takes a fetched range if it continues what is covered: the part already covered is dropped (a fetch made again
   * after a seek or a retry), the rest appended. With no position known yet, the first range sets it. Returns the
   * bytes taken, or why the range was refused: it starts after the covered end (`ahead`: taking it would skip the
   * offsets in between) or ends inside it (`behind`: a fetch from an older position).
   */
  append(range: FetchedRange, nowMs: number): number | RangeRefusal {
    const from = BigInt(range.fromOffset);
    const to = BigInt(range.toOffset);
    if (this.#end === undefined) {
      this.#start = from;
      this.#end = from;
    }
    const end = this.#end;
    if (from > end) return { refused: 'ahead', expectedOffset: end.toString() };
    if (to <= end) return { refused: 'behind', expectedOffset: end.toString() };
    let bytes = 0;
    // A range that starts where the covered end is (the usual case) holds no record before it: only one that
    // overlaps what is covered has its records' offsets compared.
    const overlaps = from < end;
    for (const record of range.records) {
      if (overlaps && BigInt(record.offset) < end) continue;
      this.#records.push(record);
      this.#arrivedAt.push(nowMs);
      bytes += record.sizeBytes;
    }
    if (!this.hasPending) this.#emptySinceMs = nowMs;
    this.#end = to;
    this.#bytes += bytes;
    return bytes;
  }

  /** Why a batch should be flushed now, or undefined if nothing is due yet. */
  dueReason(nowMs: number, limits: BatchLimits): FlushReason | undefined {
    const oldest = this.oldestArrivalMs;
    if (oldest === undefined) return undefined;
    if (this.#records.length >= limits.maxBatchRecords) return 'count';
    if (this.#bytes >= limits.maxBatchBytes) return 'bytes';
    if (nowMs - oldest >= limits.lingerMs) return 'linger';
    return undefined;
  }

  /** Milliseconds until the oldest waiting record's (or range's) linger expires (0 if due), or undefined when empty. */
  msUntilLinger(nowMs: number, limits: BatchLimits): number | undefined {
    const oldest = this.oldestArrivalMs;
    return oldest === undefined ? undefined : Math.max(0, oldest + limits.lingerMs - nowMs);
  }

  /**
   * Cuts the next batch: at most maxBatchRecords and maxBatchBytes, but at least one record if any wait. It covers
   * from where the previous batch ended to the next waiting record, or to the covered end when it takes them all.
   * Only called while `hasPending`.
   */
  take(limits: BatchLimits): BufferedBatch {
    const oldestArrivalMs = this.oldestArrivalMs!;
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
    const fromOffset = this.#start!;
    const next = this.#records[0];
    const toOffset = next ? BigInt(next.offset) : this.#end!;
    this.#start = toOffset;
    this.#emptySinceMs = undefined;
    return { records, fromOffset: fromOffset.toString(), toOffset: toOffset.toString(), bytes, oldestArrivalMs };
  }
}
