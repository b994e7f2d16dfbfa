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

/** Where an event listener's error goes: a listener's failure is reported, never the pipeline's. */
export type ListenerErrorReporter = (event: keyof SluiceEvents, error: unknown) => void;

/**
 * Node's EventEmitter, typed by {@link SluiceEvents}, whose listeners cannot break the pipeline: `emit` runs every
 * listener, and one that throws (or returns a promise that rejects) is reported and the others still run. sluice
 * emits from inside a flush, after the rows committed and before the offset is committed; a listener's bug must not
 * halt consumption or leave that offset behind.
 */
export class SluiceEmitter extends EventEmitter<SluiceEvents> {
  readonly #report: ListenerErrorReporter;

  constructor(report: ListenerErrorReporter) {
    super();
    this.#report = report;
  }

  override emit<K extends keyof SluiceEvents>(event: K, ...args: SluiceEvents[K]): boolean {
    // rawListeners: a `once` listener's wrapper, which removes itself when called.
    const listeners = this.rawListeners(event as keyof SluiceEvents) as Array<(...a: SluiceEvents[K]) => unknown>;
    for (const listener of listeners) {
      try {
        const result = listener.apply(this, args);
        if (typeof (result as { then?: unknown } | undefined)?.then === 'function') {
          Promise.resolve(result).catch((error: unknown) => this.#report(event, error));
        }
      } catch (error) {
        this.#report(event, error);
      }
    }
    return listeners.length > 0;
  }
}
