/**
 * What one batch's flush tells an operator, in traces and metrics.
 *
 * Trace: a `process <topic>` CONSUMER span (messaging conventions) from the start of the flush to the commit of its
 * rows, retries included. It links to the producer span of each record (its W3C `traceparent` header; distinct
 * contexts only, at most the SDK's link limit, the rest counted in `sluice.links.dropped`). The PostgreSQL statements,
 * poison isolation and DLQ sends are its children (made where they happen, under this span as the active one); the
 * offset commit is a `commit <topic>` child, type settle, which may end after it.
 *
 * Metrics: the duration of every flush (with how it ended), and for those committed: records flushed / stale /
 * dead-lettered, batch size in records and bytes, and each record's end-to-end latency (from its timestamp to the
 * commit of its batch).
 */
import { SpanKind, SpanStatusCode, context, type Attributes } from '@opentelemetry/api';
import type { FlushReason } from '../batcher/partition-buffer.js';
import type { SourceRecord } from '../record.js';
import type { SluiceMetrics } from './metrics.js';
import { Attr, messagingSystem } from './semconv.js';
import { linkLimit, linkToRecords } from './trace-links.js';
import { errorType, withSpan } from './tracing.js';

export interface ObservedBatch {
  topic: string;
  partition: number;
  records: readonly SourceRecord[];
  fromOffset: string;
  toOffset: string;
  bytes: number;
  reason: FlushReason;
}

export interface FlushOutcome {
  written: number;
  skipped: number;
  stale: number;
  deadLettered: number;
  attempts: number;
}

/** A batch being flushed. */
export interface FlushObservation {
  /** Its rows committed: what the flush did, and the end-to-end latency of every record. */
  committed(outcome: FlushOutcome, committedAtMs: number): void;
  /** Runs the offset commit in a `commit <topic>` span under the batch's. */
  settle<T>(commit: () => Promise<T>): Promise<T>;
}

export class FlushObserver {
  readonly #metrics: SluiceMetrics;
  readonly #linkLimit: number;

  constructor(metrics: SluiceMetrics, env: NodeJS.ProcessEnv = process.env) {
    this.#metrics = metrics;
    this.#linkLimit = linkLimit(env);
  }

  /**
   * Runs `flush` in the batch's `process` span; `flush` reports through the observation it is given. Every flush is
   * measured (messaging.process.duration), and says how it ended in `sluice.flush.outcome`: committed, void (its
   * partition was revoked, or a fence refused it: nothing written) or failed (error.type).
   */
  async observe<T>(batch: ObservedBatch, flush: (observation: FlushObservation) => Promise<T>): Promise<T> {
    const { topic, partition, records } = batch;
    const startedAtMs = performance.now();
    const attributes = this.#metrics.partitionAttributes(topic, partition);
    let outcome: 'committed' | 'void' | 'failed' = 'void';
    let failure: unknown;
    try {
      return await withSpan(
        `process ${topic}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            ...attributes,
            [Attr.operationName]: 'process',
            [Attr.operationType]: 'process',
            [Attr.batchMessageCount]: records.length,
            [Attr.firstOffset]: records[0]?.offset ?? batch.fromOffset,
            [Attr.lastOffset]: records.at(-1)?.offset ?? String(BigInt(batch.toOffset) - 1n),
            [Attr.flushReason]: batch.reason,
          },
        },
        async (span) => {
          linkToRecords(span, records, ['traceparent'], this.#linkLimit);
          const spanContext = context.active();
          try {
            return await flush({
              committed: (done, committedAtMs) => {
                outcome = 'committed';
                span.setAttributes({
                  [Attr.written]: done.written,
                  [Attr.skipped]: done.skipped,
                  [Attr.stale]: done.stale,
                  [Attr.deadLettered]: done.deadLettered,
                  [Attr.attempts]: done.attempts,
                });
                this.#recordCommitted(batch, done, committedAtMs, attributes);
              },
              settle: (commit) => context.with(spanContext, () => this.#settle(topic, attributes, commit)),
            });
          } finally {
            span.setAttribute(Attr.flushOutcome, outcome);
          }
        },
      );
    } catch (error) {
      outcome = 'failed';
      failure = error;
      throw error;
    } finally {
      this.#metrics.processDuration.record((performance.now() - startedAtMs) / 1000, {
        ...attributes,
        [Attr.operationName]: 'process',
        [Attr.flushOutcome]: outcome,
        ...(failure === undefined ? {} : { [Attr.errorType]: errorType(failure) }),
      });
    }
  }

  /** The offset commit, as a `commit <topic>` span: one that was not made (not owned any more, refused) is an error. */
  #settle<T>(topic: string, attributes: Attributes, commit: () => Promise<T>): Promise<T> {
    return withSpan(
      `commit ${topic}`,
      { kind: SpanKind.CLIENT, attributes: { ...attributes, [Attr.operationName]: 'commit', [Attr.operationType]: 'settle' } },
      async (span) => {
        const result = await commit();
        if (result === false) {
          span.setAttribute(Attr.errorType, 'commit_not_made');
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'the offset was not committed (partition revoked, or the commit failed: see the log)' });
        }
        return result;
      },
    );
  }

  #recordCommitted(batch: ObservedBatch, outcome: FlushOutcome, committedAtMs: number, attributes: Attributes): void {
    const m = this.#metrics;
    const count = batch.records.length;
    if (count === 0) return; // offsets only (control records): no batch to speak of
    m.flushed.add(count, attributes);
    if (outcome.deadLettered > 0) m.deadLettered.add(outcome.deadLettered, attributes);
    if (outcome.stale > 0) m.stale.add(outcome.stale, attributes);
    m.batchRecords.record(count, attributes);
    m.batchBytes.record(batch.bytes, attributes);
    // One measurement per record, with no attributes: the SDK hashes a measurement's attributes on every call
    // (1.6-4 µs with one to four of them, 0.2 µs with none, measured here), which per record cost sluice 13 % more CPU
    // in the benchmark. Records of one batch mostly share a few timestamps (a producer's batch has one): each distinct
    // one is converted once. A record without a timestamp (-1) has no latency to measure.
    let lastTimestamp = '';
    let latencyS: number | undefined;
    for (const record of batch.records) {
      if (record.timestamp !== lastTimestamp) {
        lastTimestamp = record.timestamp;
        const timestampMs = Number(record.timestamp);
        latencyS = timestampMs > 0 ? Math.max(0, committedAtMs - timestampMs) / 1000 : undefined;
      }
      if (latencyS !== undefined) m.latency.record(latencyS);
    }
  }
}
