#!/usr/bin/env node
/**
 * `sluice`: runs the service from environment variables and an optional config file (SLUICE_CONFIG).
 * Exit codes: 0 after a clean shutdown, 1 when sluice failed, 2 for a bad configuration.
 */
import { readConfig } from './config/load-config.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger } from './observability/logger.js';
import { startTelemetry } from './observability/telemetry.js';
import { createSluice } from './sluice.js';

async function main(): Promise<number> {
  let config;
  try {
    config = readConfig(process.env);
  } catch (error) {
    process.stderr.write(`sluice: ${errorMessage(error)}\n`);
    return 2;
  }
  const logger = createLogger(config.options.logLevel ?? 'info');
  let sluice;
  try {
    sluice = createSluice(config.options, { logger, settingSources: config.sources });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`sluice: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const telemetry = await startTelemetry(logger);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    // A second signal does not start a second shutdown; the first one is bounded by shutdownGraceMs.
    if (signals > 1) {
      logger.warn({ signal }, 'shutdown already in progress');
      return;
    }
    logger.info({ signal }, 'shutting down');
    sluice.stop().catch((error: unknown) => logger.error({ err: error }, 'shutdown did not finish cleanly'));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  let code = 0;
  try {
    await sluice.start();
    await sluice.done;
  } catch (error) {
    logger.fatal({ err: error }, `sluice failed: ${errorMessage(error)}`);
    code = 1;
  }
  await telemetry.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'telemetry shutdown failed'));
  return code;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`sluice: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
