/**
 * What one batch's flush tells an operator, in traces and metrics.
 *
 * Trace: a `process <topic>` CONSUMER span (messaging conventions) from the start of the flush to the commit of its
 * rows, retries included. It links to the producer span of each record (its W3C `traceparent` header; distinct
 * contexts only, at most the SDK's link limit, the rest counted in `sluice.links.dropped`). The PostgreSQL statements,
 * poison isolation and DLQ sends are its children (made where they happen, under this span as the active one); the
 * offset commit is a `commit <topic>` child, type settle, which may end after it.
 *
 * Metrics: the process duration, records flushed / stale / dead-lettered, batch size in records and bytes, and each
 * record's end-to-end latency (row committed − record timestamp).
 */
import { SpanKind, context, type Attributes } from '@opentelemetry/api';
import type { FlushReason } from '../batcher/partition-buffer.js';
import type { SourceRecord } from '../record.js';
import type { SluiceMetrics } from './metrics.js';
import { Attr, messagingSystem } from './semconv.js';
import { linkLimit, linkToRecords } from './trace-links.js';
import { withSpan } from './tracing.js';

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

  /** Runs `flush` in the batch's `process` span; `flush` reports through the observation it is given. */
  async observe<T>(batch: ObservedBatch, flush: (observation: FlushObservation) => Promise<T>): Promise<T> {
    const { topic, partition, records } = batch;
    const startedAt = performance.now();
    const attributes = this.#metrics.partitionAttributes(topic, partition);
    return withSpan(
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
      (span) => {
        linkToRecords(span, records, ['traceparent'], this.#linkLimit);
        const spanContext = context.active();
        return flush({
          committed: (outcome, committedAtMs) => {
            span.setAttributes({
              [Attr.written]: outcome.written,
              [Attr.skipped]: outcome.skipped,
              [Attr.stale]: outcome.stale,
              [Attr.deadLettered]: outcome.deadLettered,
              [Attr.attempts]: outcome.attempts,
            });
            this.#record(batch, outcome, committedAtMs, attributes, startedAt);
          },
          settle: (commit) =>
            context.with(spanContext, () =>
              withSpan(
                `commit ${topic}`,
                { kind: SpanKind.CLIENT, attributes: { ...attributes, [Attr.operationName]: 'commit', [Attr.operationType]: 'settle' } },
                commit,
              ),
            ),
        });
      },
    );
  }

  #record(batch: ObservedBatch, outcome: FlushOutcome, committedAtMs: number, attributes: Attributes, startedAt: number): void {
    const m = this.#metrics;
    m.processDuration.record((performance.now() - startedAt) / 1000, attributes);
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
    // one is converted once.
    let lastTimestamp = '';
    let latencyS = 0;
    for (const record of batch.records) {
      if (record.timestamp !== lastTimestamp) {
        lastTimestamp = record.timestamp;
        latencyS = Math.max(0, committedAtMs - Number(record.timestamp)) / 1000;
      }
      m.latency.record(latencyS);
    }
  }
}
