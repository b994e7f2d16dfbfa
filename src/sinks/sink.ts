import type { SourceRecord } from '../record.js';

/** Records of one topic-partition, in offset order, flushed together. */
export interface Batch {
  topic: string;
  partition: number;
  records: SourceRecord[];
  /** Assignment epoch the records were fetched under; see `Batcher.isCurrent`. */
  epoch: number;
}

export interface WriteContext {
  /** Asked just before COMMIT: false means the partition was revoked meanwhile and the write is rolled back. */
  isCurrent(): boolean;
  signal: AbortSignal;
}

export interface WriteResult {
  committed: boolean;
  upserted: number;
  deleted: number;
  /** Records that wrote nothing: tombstones under `ignore`, transforms that returned null, earlier duplicates of a key. */
  skipped: number;
}

export interface Sink {
  /** Checks (or creates, for landing) every route's table; throws naming what is missing. */
  start(): Promise<void>;
  write(batch: Batch, context: WriteContext): Promise<WriteResult>;
  close(): Promise<void>;
}
