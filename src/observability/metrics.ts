import { metrics } from '@opentelemetry/api';
import type { FlushEvent } from '../events.js';
import { Attr } from './semconv.js';

/**
 * OpenTelemetry counters fed by flush events. Without a configured SDK (OTEL_METRICS_EXPORTER) the API is a
 * no-op and recording costs next to nothing.
 */
export class FlushMetrics {
  readonly #meter = metrics.getMeter('sluice');
  readonly #flushed = this.#meter.createCounter('sluice.records.flushed', {
    description: 'Records whose batch was committed (written, skipped, stale or sent to the DLQ)',
    unit: '{record}',
  });
  readonly #deadLettered = this.#meter.createCounter('sluice.records.dead_lettered', {
    description: 'Poison records sent to the DLQ',
    unit: '{record}',
  });
  readonly #stale = this.#meter.createCounter('sluice.records.stale', {
    description: 'Records of versioned routes not written because the stored row has a newer version',
    unit: '{record}',
  });

  record(flush: FlushEvent, consumerGroup: string): void {
    const attributes = {
      [Attr.messagingSystem]: 'kafka',
      [Attr.destinationName]: flush.topic,
      [Attr.partitionId]: String(flush.partition),
      [Attr.consumerGroup]: consumerGroup,
    };
    this.#flushed.add(flush.records, attributes);
    if (flush.deadLettered > 0) this.#deadLettered.add(flush.deadLettered, attributes);
    if (flush.stale > 0) this.#stale.add(flush.stale, attributes);
  }
}
