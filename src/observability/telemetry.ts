/**
 * The service's OpenTelemetry SDK, set up from the standard OTEL_* variables:
 *
 * - Metrics are always collected for GET /metrics on the service's HTTP port (Prometheus's text format, from the
 *   Prometheus exporter, which starts no server of its own), and exported by OTLP too when OTEL_METRICS_EXPORTER is
 *   `otlp` or an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or ..._METRICS_ENDPOINT; the protocol from
 *   OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL: http/protobuf, http/json or grpc; every OTEL_METRIC_EXPORT_INTERVAL ms).
 * - Traces are exported only when asked for (OTEL_TRACES_EXPORTER other than none, or an OTLP endpoint); otherwise
 *   no tracer provider is registered and spans cost nothing, and the NodeSDK (which loads every exporter it could
 *   build, gRPC's included: about 5 MB of resident memory at idle) is not loaded: a MeterProvider of the metrics SDK
 *   serves the same metrics, with the resource the NodeSDK would have detected, and OTEL_LOG_LEVEL sets the SDK's
 *   diagnostic logger as the NodeSDK does.
 * - OTEL_SDK_DISABLED=true turns all of it off, /metrics included.
 * - An operator's command (a DLQ replay) serves no /metrics: it starts the SDK only when traces or OTLP metrics are
 *   asked for.
 *
 * A library user brings their own SDK instead; sluice only uses the API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DiagConsoleLogger, diag, metrics } from '@opentelemetry/api';
import { diagLogLevelFromString } from '@opentelemetry/core';
import type { ResourceDetector } from '@opentelemetry/resources';
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import type { MetricsEndpoint } from '../http/health-server.js';

export interface Telemetry {
  /** GET /metrics, for the HTTP server; undefined when the SDK is disabled. */
  metricsEndpoint: MetricsEndpoint | undefined;
  shutdown(): Promise<void>;
}

const list = (value: string | undefined) => (value ?? '').split(',').map((v) => v.trim().toLowerCase()).filter((v) => v !== '' && v !== 'null');
/** A variable's value, with an empty one read as unset (as the SDK reads them). */
const setting = (env: NodeJS.ProcessEnv, name: string) => (env[name]?.trim() ? env[name]!.trim() : undefined);

/** Whether OTLP should carry metrics, as the OTEL_* variables say. */
export function metricsByOtlpWanted(env: NodeJS.ProcessEnv): boolean {
  const exporters = list(env.OTEL_METRICS_EXPORTER);
  if (exporters.length > 0) return !exporters.includes('none') && exporters.includes('otlp');
  return Boolean(setting(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') || setting(env, 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'));
}

/**
 * Whether traces are exported, by the NodeSDK's own reading of OTEL_TRACES_EXPORTER (which builds the exporters):
 * off when the list starts with `none`; unset, on only when an OTLP endpoint is (sluice does not send traces to a
 * default endpoint nobody asked for).
 */
export function tracesWanted(env: NodeJS.ProcessEnv): boolean {
  const exporters = list(env.OTEL_TRACES_EXPORTER);
  if (exporters.length > 0) return exporters[0] !== 'none';
  return Boolean(setting(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') || setting(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'));
}

export async function startTelemetry(log: Logger, options: { serveMetrics: boolean } = { serveMetrics: true }, env: NodeJS.ProcessEnv = process.env): Promise<Telemetry> {
  const off: Telemetry = { metricsEndpoint: undefined, shutdown: async () => undefined };
  if (setting(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return off;
  const metricsByOtlp = metricsByOtlpWanted(env);
  const traces = tracesWanted(env);
  if (!options.serveMetrics && !metricsByOtlp && !traces) return off;
  const [{ PrometheusExporter }, { MeterProvider, PeriodicExportingMetricReader }] = await Promise.all([
    import('@opentelemetry/exporter-prometheus'),
    import('@opentelemetry/sdk-metrics'),
  ]);
  const prometheus = options.serveMetrics ? new PrometheusExporter({ preventServerStart: true }) : undefined;
  const readers: Array<InstanceType<typeof PrometheusExporter> | InstanceType<typeof PeriodicExportingMetricReader>> = prometheus ? [prometheus] : [];
  if (metricsByOtlp) {
    const variable = setting(env, 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL') ? 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
    const protocol = setting(env, variable) ?? 'http/protobuf';
    let exporter;
    if (protocol === 'grpc') exporter = new (await import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter();
    else if (protocol === 'http/protobuf') exporter = new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
    else if (protocol === 'http/json') exporter = new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter();
    else throw new ConfigError(variable, `invalid setting ${variable}="${protocol}": expected one of http/protobuf, http/json, grpc`);
    const intervalMs = Number(setting(env, 'OTEL_METRIC_EXPORT_INTERVAL'));
    readers.push(new PeriodicExportingMetricReader({ exporter, ...(intervalMs > 0 ? { exportIntervalMillis: intervalMs } : {}) }));
  }
  const serviceName = env.OTEL_SERVICE_NAME ?? 'sluice';
  let shutdown: () => Promise<void>;
  if (traces) {
    const { NodeSDK } = await import('@opentelemetry/sdk-node');
    // Traces from the OTEL_* variables. sluice's logs are pino's, on stdout.
    const sdk = new NodeSDK({ serviceName, metricReaders: readers, logRecordProcessors: [] });
    sdk.start();
    shutdown = () => sdk.shutdown();
  } else {
    const logLevel = setting(env, 'OTEL_LOG_LEVEL');
    if (logLevel) diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(logLevel) });
    const provider = new MeterProvider({ resource: await detectedResource(serviceName, env), readers });
    metrics.setGlobalMeterProvider(provider);
    shutdown = () => provider.shutdown();
  }
  log.info({ traces, metricsByOtlp, metricsEndpoint: prometheus !== undefined }, 'OpenTelemetry started');
  return {
    metricsEndpoint: prometheus && ((request: IncomingMessage, response: ServerResponse) => prometheus.getMetricsRequestHandler(request, response)),
    shutdown,
  };
}

/**
 * The resource the NodeSDK (0.223) would give sluice's metrics: its defaults, what the resource detectors find, and
 * the service name. The detectors, in the NodeSDK's order (a later one's attributes win): env, process and host when
 * OTEL_NODE_RESOURCE_DETECTORS is unset; every one for `all`; none for `none`; otherwise those it names.
 */
async function detectedResource(serviceName: string, env: NodeJS.ProcessEnv) {
  const r = await import('@opentelemetry/resources');
  const byName: Record<string, ResourceDetector> = {
    host: r.hostDetector,
    os: r.osDetector,
    serviceinstance: r.serviceInstanceIdDetector,
    process: r.processDetector,
    env: r.envDetector,
  };
  const named = list(env.OTEL_NODE_RESOURCE_DETECTORS);
  const detectors =
    named.length === 0
      ? [r.envDetector, r.processDetector, r.hostDetector]
      : named.includes('all')
        ? Object.values(byName)
        : named.includes('none')
          ? []
          : named.flatMap((n) => byName[n] ?? []);
  return r
    .defaultResource()
    .merge(r.detectResources({ detectors }))
    .merge(r.resourceFromAttributes({ 'service.name': serviceName }));
}
