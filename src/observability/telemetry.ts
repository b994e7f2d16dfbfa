/**
 * The service's OpenTelemetry SDK, set up from the standard OTEL_* variables:
 *
 * - Metrics are always collected for GET /metrics on the service's HTTP port (Prometheus's text format, from the
 *   Prometheus exporter, which starts no server of its own), and exported by OTLP too when OTEL_METRICS_EXPORTER is
 *   `otlp` or an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or ..._METRICS_ENDPOINT; the protocol from
 *   OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL, http/protobuf or grpc; every OTEL_METRIC_EXPORT_INTERVAL ms).
 * - Traces are exported only when asked for (OTEL_TRACES_EXPORTER other than none, or an OTLP endpoint); otherwise
 *   no tracer provider is registered and spans cost nothing.
 * - OTEL_SDK_DISABLED=true turns all of it off, /metrics included.
 * - An operator's command (a DLQ replay) serves no /metrics: it starts the SDK only when traces or OTLP metrics are
 *   asked for.
 *
 * A library user brings their own SDK instead; sluice only uses the API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import type { MetricsEndpoint } from '../http/health-server.js';

export interface Telemetry {
  /** GET /metrics, for the HTTP server; undefined when the SDK is disabled. */
  metricsEndpoint: MetricsEndpoint | undefined;
  shutdown(): Promise<void>;
}

const list = (value: string | undefined) => (value ?? '').split(',').map((v) => v.trim()).filter(Boolean);

/** Whether OTLP should carry `signal` (traces, metrics), as the OTEL_* variables say. */
function otlpWanted(env: NodeJS.ProcessEnv, signal: 'TRACES' | 'METRICS'): boolean {
  const exporters = list(env[`OTEL_${signal}_EXPORTER`]);
  if (exporters.includes('none')) return false;
  if (exporters.length > 0) return exporters.includes('otlp');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`]);
}

export async function startTelemetry(log: Logger, options: { serveMetrics: boolean } = { serveMetrics: true }, env: NodeJS.ProcessEnv = process.env): Promise<Telemetry> {
  const off: Telemetry = { metricsEndpoint: undefined, shutdown: async () => undefined };
  if (env.OTEL_SDK_DISABLED === 'true') return off;
  const metricsByOtlp = otlpWanted(env, 'METRICS');
  const tracesWanted = otlpWanted(env, 'TRACES') || list(env.OTEL_TRACES_EXPORTER).some((e) => e !== 'none' && e !== 'otlp');
  if (!options.serveMetrics && !metricsByOtlp && !tracesWanted) return off;
  const [{ NodeSDK }, { PrometheusExporter }, { PeriodicExportingMetricReader }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-prometheus'),
    import('@opentelemetry/sdk-metrics'),
  ]);
  const prometheus = options.serveMetrics ? new PrometheusExporter({ preventServerStart: true }) : undefined;
  const readers: Array<InstanceType<typeof PrometheusExporter> | InstanceType<typeof PeriodicExportingMetricReader>> = prometheus ? [prometheus] : [];
  if (metricsByOtlp) {
    const protocol = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
    let exporter;
    if (protocol === 'grpc') exporter = new (await import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter();
    else if (protocol === 'http/protobuf') exporter = new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
    else throw new ConfigError('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', `invalid setting OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="${protocol}": sluice exports metrics by http/protobuf or grpc`);
    const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
    readers.push(new PeriodicExportingMetricReader({ exporter, ...(interval > 0 ? { exportIntervalMillis: interval } : {}) }));
  }
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? 'sluice',
    metricReaders: readers,
    // Traces from the OTEL_* variables when asked for; none otherwise. sluice's logs are pino's, on stdout.
    ...(tracesWanted ? {} : { spanProcessors: [] }),
    logRecordProcessors: [],
  });
  sdk.start();
  log.info({ traces: tracesWanted, metricsByOtlp, metricsEndpoint: prometheus !== undefined }, 'OpenTelemetry started');
  return {
    metricsEndpoint: prometheus && ((request: IncomingMessage, response: ServerResponse) => prometheus.getMetricsRequestHandler(request, response)),
    shutdown: () => sdk.shutdown(),
  };
}
