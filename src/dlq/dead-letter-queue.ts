import { SpanKind, context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { dlqTopicFor } from '../config/resolve-options.js';
import { DeadLetterError, errorMessage, sqlStateOf } from '../errors.js';
import type { SluiceMetrics } from '../observability/metrics.js';
import { Attr, messagingSystem } from '../observability/semconv.js';
import { traceparentOf } from '../observability/trace-links.js';
import { withSpan } from '../observability/tracing.js';
import { forEachHeader, headerValueBytes } from '../record.js';
import type { PoisonRecord } from '../sinks/sink.js';
import type { DeadLetteredRecord } from './dead-lettered-record.js';
import { DlqHeaders, provenanceHeaders, truncateUtf8 } from './dlq-headers.js';
import type { OutgoingRecord, RecordProducer } from './record-producer.js';

export interface DeadLetterQueueOptions {
  /** `dlq.topic`: `{topic}` stands for the source topic. */
  topicTemplate: string;
  groupId: string;
  version: string;
  /**
   * How long a send may wait for its acknowledgement. Sends happen while the batch's transaction is open, so this
   * bounds how long a DLQ in trouble can hold it (sluice uses statementTimeoutMs).
   */
  sendTimeoutMs: number;
}

const recentKept = 20;

/**
 * Sends poison records to their source topic's DLQ topic, each with its original key, value and headers and
 * sluice's provenance headers. `send` resolves only when the broker has acknowledged every record; otherwise it
 * throws a retriable DeadLetterError and the caller must not commit past the records.
 */
export class DeadLetterQueue {
  readonly #producer: RecordProducer;
  readonly #options: DeadLetterQueueOptions;
  readonly #log: Logger;
  readonly #metrics: SluiceMetrics | undefined;
  #sent = 0;
  readonly #recent: DeadLetteredRecord[] = [];

  constructor(producer: RecordProducer, options: DeadLetterQueueOptions, log: Logger, metrics?: SluiceMetrics) {
    this.#producer = producer;
    this.#options = options;
    this.#log = log;
    this.#metrics = metrics;
  }

  /** The last records sent to a DLQ topic, oldest first (at most 20): for /status and the status page. */
  recent(): DeadLetteredRecord[] {
    return this.#recent.map((r) => ({ ...r }));
  }

  /** Records sent to a DLQ topic and acknowledged, since start. */
  get sent(): number {
    return this.#sent;
  }

  topicFor(sourceTopic: string): string {
    return dlqTopicFor(this.#options.topicTemplate, sourceTopic);
  }

  /** Sends one batch's poison records (all of one partition). `attempts` counts the batch's flush attempts. */
  /** `acked` hears of each chunk's poison records once the broker has acknowledged them. */
  async send(poison: readonly PoisonRecord[], attempts: number, acked: (poison: PoisonRecord[]) => void = () => undefined): Promise<void> {
    if (poison.length === 0) return;
    const topic = this.topicFor(poison[0]!.record.topic);
    await withSpan(
      `send ${topic}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          [Attr.messagingSystem]: messagingSystem,
          [Attr.operationName]: 'send',
          [Attr.operationType]: 'send',
          [Attr.destinationName]: topic,
          [Attr.batchMessageCount]: poison.length,
        },
      },
      () => this.#send(topic, poison, attempts, acked),
    );
  }

  async #send(topic: string, poison: readonly PoisonRecord[], attempts: number, acked: (poison: PoisonRecord[]) => void): Promise<void> {
    const sourceTopic = poison[0]!.record.topic;
    const failedAt = new Date();
    // The DLQ send's span, under the flush's: the trace that explains why these records are here.
    const trace = traceparentOf(context.active());
    const sourceOf = new Map<OutgoingRecord, PoisonRecord>();
    const records: OutgoingRecord[] = poison.map((p) => {
      const { record, error } = p;
      const headers: OutgoingRecord['headers'] = {};
      for (const [name, value] of Object.entries(record.headers)) if (value !== undefined) headers[name] = value;
      const provenance = provenanceHeaders(record, error, { groupId: this.#options.groupId, attempts, failedAt, version: this.#options.version });
      for (const [name, value] of Object.entries(provenance)) {
        // A record that was dead-lettered before (and replayed) keeps its earlier provenance; the new values follow it.
        const earlier = headers[name];
        headers[name] = earlier === undefined ? value : [...(Array.isArray(earlier) ? earlier : [earlier]), value];
      }
      if (trace) headers[DlqHeaders.traceparent] = trace;
      const outgoing = { key: record.key, value: record.value, headers };
      sourceOf.set(outgoing, p);
      return outgoing;
    });
    // One request per chunk: a batch's poison records together (each with its provenance headers) can be far larger
    // than the DLQ topic takes in one record batch, which the broker would refuse whole, for ever. Each chunk has the
    // whole timeout; after one fails or times out no further chunk is sent (that one may still land: at most one chunk
    // twice), and the chunks acknowledged before it are not sent again.
    const ms = this.#options.sendTimeoutMs;
    for (const chunk of chunksOf(records, this.#producer.maxSendBytes(topic))) {
      const sending = this.#producer.send(topic, chunk);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no acknowledgement within ${ms} ms`)), ms);
      });
      try {
        await Promise.race([sending, timeout]);
      } catch (error) {
        // A send that outlived its timeout may still land: the batch is retried, and the DLQ may then hold those
        // records twice (replay dedupes by source coordinates). Its late outcome only matters for the log.
        sending.catch((late: unknown) => this.#log.debug({ err: late, dlqTopic: topic }, 'a timed-out DLQ send failed'));
        throw new DeadLetterError(topic, `writing ${records.length} poison record(s) of ${sourceTopic} to DLQ topic ${topic} failed: ${errorMessage(error)}`, error);
      } finally {
        clearTimeout(timer);
      }
      const done = chunk.map((r) => sourceOf.get(r)!);
      this.#delivered(topic, done);
      acked(done);
    }
  }

  /** A chunk the DLQ topic acknowledged: counted, kept for /status, and logged, whatever becomes of later chunks. */
  #delivered(topic: string, poison: readonly PoisonRecord[]): void {
    this.#sent += poison.length;
    this.#metrics?.dlqSent.add(poison.length, { [Attr.messagingSystem]: messagingSystem, [Attr.destinationName]: topic, [Attr.operationName]: 'send' });
    const atMs = Date.now();
    for (const { record, error } of poison) {
      const sqlState = sqlStateOf(error);
      this.#recent.push({
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        dlqTopic: topic,
        code: error.code,
        ...(sqlState ? { sqlState } : {}),
        reason: truncateUtf8(error.message, 500),
        atMs,
      });
      this.#log.warn(
        { topic: record.topic, partition: record.partition, offset: record.offset, dlqTopic: topic, code: error.code, err: error },
        `poison record sent to the DLQ: ${error.message}`,
      );
    }
    if (this.#recent.length > recentKept) this.#recent.splice(0, this.#recent.length - recentKept);
  }

  close(): Promise<void> {
    return this.#producer.close();
  }
}

/** What a record adds to a record batch, near enough: key, value, header names and values, and framing. */
function estimatedBytes(record: OutgoingRecord): number {
  let bytes = 64 + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  forEachHeader(record.headers, (name, value) => (bytes += name.length + headerValueBytes(value) + 8));
  return bytes;
}

/** Consecutive chunks of at most `maxBytes` (estimated), each with at least one record; order is kept. */
export function chunksOf(records: readonly OutgoingRecord[], maxBytes: number): OutgoingRecord[][] {
  const chunks: OutgoingRecord[][] = [];
  let chunk: OutgoingRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = estimatedBytes(record);
    if (chunk.length > 0 && bytes + size > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(record);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}
