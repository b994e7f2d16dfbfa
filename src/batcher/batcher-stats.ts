/**
 * What the batcher reports for /status and the progress log. A type of its own, so that the public types (SluiceStatus)
 * do not reach the batcher's internals and, through them, the PostgreSQL client's types.
 */
export interface BatcherStats {
  consumedRecords: number;
  flushedRecords: number;
  /** Records sent to the DLQ (counted in flushedRecords too: their offsets are done). */
  deadLetteredRecords: number;
  /** Records of versioned routes not written because the stored row was newer. */
  staleRecords: number;
  /** Partitions whose batch is waiting to be retried after a transient failure. */
  retryingPartitions: number;
  batches: number;
  bufferedRecords: number;
  /** Buffered plus in-flight bytes: what the global cap bounds. */
  bufferedBytes: number;
  pausedPartitions: number;
}

/** One partition, as the batcher sees it. */
export interface PartitionBatchStats {
  topic: string;
  partition: number;
  bufferedRecords: number;
  /** Buffered plus in flight. */
  bufferedBytes: number;
  /** How long the oldest buffered record has waited; absent when nothing is buffered. */
  oldestBufferedMs?: number;
  /** Where the last batch written ended: the next offset to write. */
  lastFlushedOffset?: string;
  /** Why fetching is paused: backpressure, retry, shed; empty when it is not. */
  paused: string[];
  /** The batch in flight failed and waits to be tried again: since when (ms since the epoch), and how often. */
  retrying?: { sinceMs: number; attempts: number };
  /** The last flush failure, kept after the partition recovered. */
  lastError?: { message: string; atMs: number };
}
