import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics } from '@opentelemetry/api';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startTelemetry, type Telemetry } from '../../src/observability/telemetry.js';

/** GET /metrics of a started telemetry, through a real HTTP server. */
async function scrape(telemetry: Telemetry): Promise<string> {
  const server = createServer((request, response) => telemetry.metricsEndpoint!(request, response));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
    return await response.text();
  } finally {
    server.close();
  }
}

describe('telemetry without traces', () => {
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.shutdown();
    telemetry = undefined;
    metrics.disable(); // the next start registers its own provider
    delete process.env.OTEL_RESOURCE_ATTRIBUTES;
  });

  it('serves /metrics with the resource the NodeSDK would detect', async () => {
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment.name=staging';
    telemetry = await startTelemetry(pino({ level: 'silent' }), { serveMetrics: true }, { OTEL_SERVICE_NAME: 'sluice-orders' });
    metrics.getMeter('t').createCounter('probe_total').add(3);
    const text = await scrape(telemetry);
    const target = text.split('\n').find((line) => line.startsWith('target_info{'));
    expect(target).toContain('service_name="sluice-orders"');
    expect(target).toContain('deployment_environment_name="staging"');
    expect(target).toContain(`process_pid="${process.pid}"`);
    expect(target).toContain('host_name=');
    // Unset OTEL_NODE_RESOURCE_DETECTORS means env, process and host, as in the NodeSDK: no os attributes, and no
    // service.instance.id (a new one at every start would make new series of every metric).
    expect(target).not.toContain('os_type=');
    expect(target).not.toContain('service_instance_id=');
    expect(text).toMatch(/^probe_total\{[^}]*\} 3/m);
  });

  it('runs only the detectors OTEL_NODE_RESOURCE_DETECTORS names', async () => {
    telemetry = await startTelemetry(pino({ level: 'silent' }), { serveMetrics: true }, { OTEL_NODE_RESOURCE_DETECTORS: 'env,os' });
    const target = (await scrape(telemetry)).split('\n').find((line) => line.startsWith('target_info{'));
    expect(target).toContain('service_name="sluice"');
    expect(target).toContain('os_type=');
    expect(target).not.toContain('process_pid=');
    expect(target).not.toContain('host_name=');
  });
});
