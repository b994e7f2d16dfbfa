/**
 * The one place that builds sluice's kafkajs clients (the consumer's, the DLQ producer's), so that every client
 * reaches the brokers the same way and retries on the same schedule.
 */
import kafkajs, { type Kafka as KafkaClient, type RetryOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { kafkajsLogCreator } from './kafkajs-log.js';

const { Kafka, logLevel: KafkaLogLevel } = kafkajs;

/**
 * kafkajs' retries (connections, metadata, requests, the consumer's fetch loop): waits grow from 300 ms to
 * kafka.retryBackoffMaxMs, five retries, then the operation fails to sluice, which decides what follows. kafkajs'
 * own cap is 30 s: after an outage, a client would wait that long before it looked at the brokers again.
 */
export function kafkaRetry(options: ResolvedOptions): RetryOptions {
  const maxRetryTime = options.kafka.retryBackoffMaxMs;
  return { initialRetryTime: Math.min(300, maxRetryTime), maxRetryTime, retries: 5 };
}

/** A kafkajs client named `clientId`, logging into `log` from `level` up ('warn' or 'error'). */
export function createKafkaClient(options: ResolvedOptions, clientId: string, log: Logger, level: 'warn' | 'error'): KafkaClient {
  return new Kafka({
    clientId,
    brokers: options.kafka.brokers,
    logLevel: level === 'warn' ? KafkaLogLevel.WARN : KafkaLogLevel.ERROR,
    logCreator: kafkajsLogCreator(log),
    retry: kafkaRetry(options),
  });
}
