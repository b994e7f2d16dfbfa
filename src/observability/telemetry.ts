import type { Logger } from 'pino';

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry Node SDK when an exporter is configured through the standard OTEL_* variables
 * (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER); otherwise the API stays a no-op
 * and the SDK is not even loaded.
 */
export async function startTelemetry(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Telemetry> {
  const configured =
    env.OTEL_SDK_DISABLED !== 'true' &&
    Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_TRACES_EXPORTER || env.OTEL_METRICS_EXPORTER);
  if (!configured) return { shutdown: async () => undefined };
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName: env.OTEL_SERVICE_NAME ?? 'sluice' });
  sdk.start();
  log.info('OpenTelemetry SDK started');
  return { shutdown: () => sdk.shutdown() };
}
