/**
 * sluice's OpenTelemetry metrics, in one place: names, units, buckets and attributes. Messaging and database metrics
 * follow the semantic conventions (v1.44); sluice's own are `sluice.*`. Instruments are made from the meter provider
 * registered when the pipeline is built (the service registers one that /metrics reads, see telemetry.ts): without
 * one, recording is a no-op.
 *
 * Prometheus names, as the Node exporter on /metrics writes them: dots become underscores, counters get `_total`,
 * and no unit suffix is added (`messaging_process_duration_bucket`, `sluice_records_flushed_total`). An OpenTelemetry
 * Collector's Prometheus exporter adds unit suffixes instead (`messaging_process_duration_seconds_bucket`); the
 * dashboard in deploy/ is written for the names on /metrics.
 */
import { metrics, type Attributes, type BatchObservableResult, type Counter, type Histogram, type Meter } from '@opentelemetry/api';
import type { BatcherStats } from '../batcher/batcher-stats.js';
import { sluiceVersion } from '../version.js';
import { Attr, messagingSystem } from './semconv.js';

/** The convention's suggested buckets for messaging and database durations, in seconds. */
const durationBucketsS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** From the record's timestamp to its row's commit: from a few milliseconds to minutes behind. */
const latencyBucketsS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
const batchRecordBuckets = [1, 10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000];
const batchByteBuckets = [1_024, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864];

/** What the gauges read when metrics are collected (a scrape of /metrics, an OTLP export). */
export interface GaugeSource {
  /** Per assigned partition: records in Kafka not yet committed by sluice. */
  lag(): Array<{ topic: string; partition: number; lag: number }>;
  batching(): Pick<BatcherStats, 'bufferedRecords' | 'bufferedBytes' | 'pausedPartitions' | 'retryingPartitions'>;
  breaker(): { open: boolean; ratio: number };
}

export class SluiceMetrics {
  readonly consumed: Counter;
  readonly processDuration: Histogram;
  readonly flushed: Counter;
  readonly deadLettered: Counter;
  readonly stale: Counter;
  readonly batchRecords: Histogram;
  readonly batchBytes: Histogram;
  readonly latency: Histogram;
  readonly dbDuration: Histogram;
  readonly dlqSent: Counter;
  readonly #meter: Meter;

  constructor(readonly groupId: string) {
    const meter = metrics.getMeter('sluice', sluiceVersion);
    this.#meter = meter;
    this.consumed = meter.createCounter('messaging.client.consumed.messages', {
      description: 'Records fetched from Kafka and handed to the batcher',
      unit: '{message}',
    });
    this.processDuration = meter.createHistogram('messaging.process.duration', {
      description: 'A batch flush, from its start to the commit of its rows, retries included',
      unit: 's',
      advice: { explicitBucketBoundaries: durationBucketsS },
    });
    this.flushed = meter.createCounter('sluice.records.flushed', {
      description: 'Records whose batch committed (written, skipped, stale or sent to the DLQ)',
      unit: '{record}',
    });
    this.deadLettered = meter.createCounter('sluice.records.dead_lettered', { description: 'Poison records sent to the DLQ', unit: '{record}' });
    this.stale = meter.createCounter('sluice.records.stale', {
      description: 'Records of versioned routes not written because the stored row has a newer version',
      unit: '{record}',
    });
    this.batchRecords = meter.createHistogram('sluice.batch.records', {
      description: 'Records per flushed batch',
      unit: '{record}',
      advice: { explicitBucketBoundaries: batchRecordBuckets },
    });
    this.batchBytes = meter.createHistogram('sluice.batch.size', {
      description: 'Key, value and header bytes per flushed batch',
      unit: 'By',
      advice: { explicitBucketBoundaries: batchByteBuckets },
    });
    this.latency = meter.createHistogram('sluice.record.latency', {
      description: "End to end: from a record's Kafka timestamp to the commit of its batch in PostgreSQL (one distribution per process)",
      unit: 's',
      advice: { explicitBucketBoundaries: latencyBucketsS },
    });
    this.dbDuration = meter.createHistogram('db.client.operation.duration', {
      description: 'One PostgreSQL statement of a flush',
      unit: 's',
      advice: { explicitBucketBoundaries: durationBucketsS },
    });
    this.dlqSent = meter.createCounter('messaging.client.sent.messages', { description: 'Records sent to DLQ topics', unit: '{message}' });
  }

  /** Records a fetch handed to the batcher. */
  recordConsumed(topic: string, partition: number, records: number): void {
    this.consumed.add(records, { ...this.partitionAttributes(topic, partition), [Attr.operationName]: 'poll' });
  }

  /** The attributes of a partition's metrics. */
  partitionAttributes(topic: string, partition: number): Attributes {
    return {
      [Attr.messagingSystem]: messagingSystem,
      [Attr.destinationName]: topic,
      [Attr.partitionId]: String(partition),
      [Attr.consumerGroup]: this.groupId,
    };
  }

  /** Gauges read from `source` at each collection. Answers a function that stops them (they read 0 from then on). */
  observe(source: GaugeSource): () => void {
    const meter = this.#meter;
    const lag = meter.createObservableGauge('sluice.consumer.lag', {
      description: 'Records in Kafka not yet committed by sluice, per assigned partition',
      unit: '{message}',
    });
    const bufferedRecords = meter.createObservableGauge('sluice.buffered.records', { description: 'Records buffered, not yet flushed', unit: '{record}' });
    const bufferedBytes = meter.createObservableGauge('sluice.buffered.size', { description: 'Bytes buffered and in flight', unit: 'By' });
    const paused = meter.createObservableGauge('sluice.partitions.paused', { description: 'Partitions whose fetching is paused', unit: '{partition}' });
    const retrying = meter.createObservableGauge('sluice.partitions.retrying', {
      description: 'Partitions whose batch waits to be retried after a transient failure',
      unit: '{partition}',
    });
    const breakerOpen = meter.createObservableGauge('sluice.breaker.open', { description: '1 when the DLQ breaker has stopped consumption', unit: '1' });
    const breakerRatio = meter.createObservableGauge('sluice.breaker.ratio', {
      description: "Share of the breaker window's records sent to the DLQ",
      unit: '1',
    });
    const memory = meter.createObservableGauge('process.memory.usage', { description: 'Resident set size of the process', unit: 'By' });
    const heap = meter.createObservableGauge('v8js.memory.heap.used', { description: 'V8 heap in use', unit: 'By' });
    const group = { [Attr.consumerGroup]: this.groupId };
    // The SDK keeps reporting a gauge's last value for a series no longer observed: a partition this member no longer
    // owns is reported once more at 0 (its lag is another member's now), and once stopped every gauge reads 0.
    let stopped = false;
    let lagReported = new Map<string, Attributes>();
    const collect = (result: BatchObservableResult) => {
      const lagNow = new Map<string, Attributes>();
      for (const p of stopped ? [] : source.lag()) {
        const attributes = this.partitionAttributes(p.topic, p.partition);
        lagNow.set(`${p.topic}:${p.partition}`, attributes);
        result.observe(lag, p.lag, attributes);
      }
      for (const [key, attributes] of lagReported) if (!lagNow.has(key)) result.observe(lag, 0, attributes);
      lagReported = lagNow;
      const batching = stopped ? { bufferedRecords: 0, bufferedBytes: 0, pausedPartitions: 0, retryingPartitions: 0 } : source.batching();
      result.observe(bufferedRecords, batching.bufferedRecords, group);
      result.observe(bufferedBytes, batching.bufferedBytes, group);
      result.observe(paused, batching.pausedPartitions, group);
      result.observe(retrying, batching.retryingPartitions, group);
      const breaker = stopped ? { open: false, ratio: 0 } : source.breaker();
      result.observe(breakerOpen, breaker.open ? 1 : 0, group);
      result.observe(breakerRatio, breaker.ratio, group);
      const usage = process.memoryUsage();
      result.observe(memory, usage.rss);
      result.observe(heap, usage.heapUsed);
    };
    const observables = [lag, bufferedRecords, bufferedBytes, paused, retrying, breakerOpen, breakerRatio, memory, heap];
    meter.addBatchObservableCallback(collect, observables);
    return () => {
      stopped = true;
    };
  }
}
