/**
 * The one place that builds sluice's kafkajs clients (the consumer's, the DLQ producer's, the admin, scan and replay
 * clients of the commands), so that every client reaches the brokers the same way: the same TLS and SASL, and the
 * same retry schedule.
 */
import kafkajs, { type Kafka as KafkaClient, type RetryOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { kafkajsLogCreator } from './kafkajs-log.js';
import { saslOptions, tlsOptions } from './kafka-security.js';

const { Kafka, logLevel: KafkaLogLevel } = kafkajs;

/**
 * kafkajs' retries (connections, metadata, requests, the consumer's fetch loop): waits grow from 300 ms to
 * kafka.retryBackoffMaxMs, then the operation fails to sluice, which decides what follows. Enough retries that they
 * span at least kafkajs' default window (about 9 s: five from 300 ms), so that a short blip (a broker restarting, a
 * leader moving) does not take the consumer out of its group; but no single wait is longer than the cap, so a
 * client looks at the brokers again within that long once they are back.
 */
export function kafkaRetry(options: ResolvedOptions): RetryOptions {
  const maxRetryTime = options.kafka.retryBackoffMaxMs;
  const initialRetryTime = Math.min(300, maxRetryTime);
  let retries = 0;
  for (let waited = 0; waited < 9_000 && retries < 30; retries++) waited += Math.min(maxRetryTime, initialRetryTime * 2 ** retries);
  return { initialRetryTime, maxRetryTime, retries: Math.max(5, retries) };
}

/** A kafkajs client named `clientId`, logging into `log` from `level` up ('warn' or 'error'). */
export function createKafkaClient(options: ResolvedOptions, clientId: string, log: Logger, level: 'warn' | 'error'): KafkaClient {
  const ssl = tlsOptions(options);
  const sasl = saslOptions(options);
  return new Kafka({
    clientId,
    brokers: options.kafka.brokers,
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
    logLevel: level === 'warn' ? KafkaLogLevel.WARN : KafkaLogLevel.ERROR,
    logCreator: kafkajsLogCreator(log),
    retry: kafkaRetry(options),
  });
}
