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
