import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { SluiceMetrics } from '../../src/observability/metrics.js';
import { metricsByOtlpWanted, tracesWanted } from '../../src/observability/telemetry.js';
import { Throughput } from '../../src/observability/throughput.js';
import { linksFromHeaders } from '../../src/observability/trace-links.js';

class TestReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

/** name → [attributes, value] of each gauge point. */
function gauges(collected: ResourceMetrics): Map<string, Array<[Record<string, unknown>, number]>> {
  const out = new Map<string, Array<[Record<string, unknown>, number]>>();
  for (const scope of collected.scopeMetrics) {
    for (const metric of scope.metrics) {
      out.set(metric.descriptor.name, metric.dataPoints.map((p) => [p.attributes, p.value as number]));
    }
  }
  return out;
}

describe('gauges', () => {
  it('report a partition no longer owned once at 0, and read 0 everywhere once stopped', async () => {
    const reader = new TestReader();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    const m = new SluiceMetrics('g');
    let owned = [{ topic: 't', partition: 0, lag: 5 }, { topic: 't', partition: 1, lag: 7 }];
    const stop = m.observe({
      lag: () => owned,
      batching: () => ({ bufferedRecords: 3, bufferedBytes: 300, pausedPartitions: 1, retryingPartitions: 0 }),
      breaker: () => ({ open: true, ratio: 0.5 }),
    });
    const lagOf = async () =>
      (gauges((await reader.collect()).resourceMetrics).get('sluice.consumer.lag') ?? []).map(([a, v]) => [a['messaging.destination.partition.id'], v]).sort();
    expect(await lagOf()).toEqual([['0', 5], ['1', 7]]);
    owned = [{ topic: 't', partition: 1, lag: 2 }];
    expect(await lagOf()).toEqual([['0', 0], ['1', 2]]);
    stop();
    const after = gauges((await reader.collect()).resourceMetrics);
    expect(after.get('sluice.consumer.lag')!.map(([, v]) => v)).toEqual([0, 0]);
    for (const name of ['sluice.buffered.records', 'sluice.buffered.size', 'sluice.partitions.paused', 'sluice.breaker.open', 'sluice.breaker.ratio']) {
      expect(after.get(name)!.map(([, v]) => v), name).toEqual([0]);
    }
  });
});

describe('telemetry settings', () => {
  it('exports traces only when asked, reading OTEL_TRACES_EXPORTER as the SDK does', () => {
    expect(tracesWanted({})).toBe(false);
    expect(tracesWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    expect(tracesWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' })).toBe(false);
    expect(tracesWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
    expect(tracesWanted({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(false);
    expect(tracesWanted({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(tracesWanted({ OTEL_TRACES_EXPORTER: 'OTLP' })).toBe(true);
  });

  it('exports metrics by OTLP only when asked; /metrics is served regardless', () => {
    expect(metricsByOtlpWanted({})).toBe(false);
    expect(metricsByOtlpWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    expect(metricsByOtlpWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(false);
    expect(metricsByOtlpWanted({ OTEL_METRICS_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(false);
    expect(metricsByOtlpWanted({ OTEL_METRICS_EXPORTER: 'prometheus' })).toBe(false);
  });
});

describe('links from headers', () => {
  const parent = (i: number) => `00-${String(i).padStart(32, '0')}-${String(i).padStart(16, '0')}-01`;

  it('reads Buffers, repeated headers (the last), tracestate; one link per distinct context, the rest over the limit dropped', () => {
    const records = [
      { headers: { traceparent: Buffer.from(parent(1)), tracestate: 'v=1' } },
      { headers: { traceparent: parent(1) } },
      { headers: { traceparent: [parent(9), parent(2)] } },
      { headers: { traceparent: 'not a traceparent' } },
      { headers: {} },
      { headers: { traceparent: parent(3) } },
    ];
    const { links, dropped } = linksFromHeaders(records, 2);
    expect(links.map((l) => l.context.spanId)).toEqual([parent(1).split('-')[2], parent(2).split('-')[2]]);
    expect(links[0]!.context.traceState?.get('v')).toBe('1');
    expect(dropped).toBe(2); // the malformed one takes a place in the count, parent(3) is over the limit
  });
});

describe('throughput', () => {
  it('counts records per second over the window, forgetting what is older', () => {
    const t = new Throughput();
    t.add(1_000, 10_000);
    t.add(1_000, 14_500);
    expect(t.perSecond(19_999, 10_000)).toBe(200);
    expect(t.perSecond(23_000, 10_000)).toBe(100);
    expect(t.perSecond(80_000, 10_000)).toBe(0);
  });
});
