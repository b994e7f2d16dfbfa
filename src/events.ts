import { EventEmitter } from 'node:events';
import type { FlushReason } from './batcher/partition-buffer.js';
import type { LifecycleState } from './lifecycle/lifecycle.js';

export interface FlushEvent {
  topic: string;
  partition: number;
  /** Records in the batch; 0 for offsets that held only control records or aborted ones. */
  records: number;
  /** The batch covers the offsets [fromOffset, toOffset); the offset committed after it is toOffset. */
  fromOffset: string;
  toOffset: string;
  reason: FlushReason;
  /** From the arrival of the batch's oldest record to the start of its flush. */
  waitedMs: number;
  /** The write, from connection checkout to COMMIT. */
  durationMs: number;
  upserted: number;
  deleted: number;
  skipped: number;
  /** Records of a versioned route older than the stored row: not written. */
  stale: number;
  /** Poison records of the batch, sent to the DLQ before its rows committed. */
  deadLettered: number;
  attempts: number;
}

export interface CommitEvent {
  topic: string;
  partition: number;
  /** The next offset to read, as committed to the group. */
  offset: string;
}

export interface SluiceEvents {
  flush: [FlushEvent];
  commit: [CommitEvent];
  state: [{ from: LifecycleState; to: LifecycleState; error?: Error }];
  rebalance: [{ assigned: Array<{ topic: string; partitions: number[] }> }];
}

/** Node's EventEmitter, typed by {@link SluiceEvents}. */
export class SluiceEmitter extends EventEmitter<SluiceEvents> {}
