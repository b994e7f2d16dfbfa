/** `sluice run`: the service, until SIGTERM or SIGINT (a second signal does not start a second shutdown). */
import { ConfigError, errorMessage } from '../errors.js';
import type { Logger } from 'pino';
import { createLogger } from '../observability/logger.js';
import { startTelemetry } from '../observability/telemetry.js';
import { createSluice } from '../sluice.js';
import { ExitCodes } from './exit-codes.js';
import type { Settings } from './settings.js';

export async function runService(settings: Settings): Promise<number> {
  const logger = createLogger(settings.resolved.logLevel);
  // First: the pipeline's instruments come from the meter provider it registers.
  let telemetry;
  try {
    telemetry = await startTelemetry(logger);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`sluice: ${error.message}\n`);
    return ExitCodes.usage;
  }
  const sluice = createSluice(settings.options, {
    logger,
    settingSources: settings.sources,
    ...(telemetry.metricsEndpoint ? { metricsEndpoint: telemetry.metricsEndpoint } : {}),
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    // The first signal's shutdown is bounded by shutdownGraceMs.
    if (signals > 1) {
      logger.warn({ signal }, 'shutdown already in progress');
      return;
    }
    logger.info({ signal }, 'shutting down');
    sluice.stop().catch((error: unknown) => logger.error({ err: error }, 'shutdown did not finish cleanly'));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  let code: number = ExitCodes.ok;
  try {
    await sluice.start();
    await sluice.done;
  } catch (error) {
    logger.fatal({ err: error }, `sluice failed: ${errorMessage(error)}`);
    code = ExitCodes.failed;
  }
  await telemetry.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'telemetry shutdown failed'));
  exitIfHeldOpen(logger, code);
  return code;
}

/**
 * Everything sluice opened is closed by now (the Kafka clients' leftover sockets too: closeKafkaClient), and the
 * process ends when nothing is left. Should a library hold something open all the same, the process would outlive
 * its shutdown until the orchestrator kills it: as a last resort it exits after a moment anyway, and says what was
 * still open. The timer does not itself keep the process alive.
 */
function exitIfHeldOpen(logger: Logger, code: number): void {
  setTimeout(() => {
    logger.warn({ open: process.getActiveResourcesInfo() }, 'sluice has stopped, but something still holds the process open: exiting anyway');
    process.exit(code);
  }, 2_000).unref();
}
