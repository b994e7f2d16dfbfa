/**
 * kafkajs' log lines into sluice's pino logger, at the level each deserves. kafkajs logs a broker's answer that it
 * retries itself (a coordinator still loading, a rebalance) at error level; such conditions are expected at every
 * start and every scale step, and are not errors to an operator. Neither is each failed connection attempt while a
 * broker is away, nor kafkajs' own account of a consumer crash: sluice reports those once, with what it does next
 * (a warning naming the error and when the consumer rejoins, and /readyz).
 */
import { createRequire } from 'node:module';
import kafkajs, { type LogEntry, type logCreator } from 'kafkajs';
import type { Logger } from 'pino';

const { logLevel: KafkaLogLevel } = kafkajs;

/**
 * Retried broker conditions, as kafkajs words them in its logs (its protocol error table is the only handle: a logged
 * error carries the message, not the code), and their level: coordinator moves and rebalances are routine (debug),
 * other conditions kafkajs retries are worth a warning.
 */
const expectedConditions: Map<string, 'debug' | 'warn'> = (() => {
  const require = createRequire(import.meta.url);
  const { errorCodes } = require('kafkajs/src/protocol/error.js') as { errorCodes: Array<{ type: string; retriable: boolean; message: string }> };
  // UNKNOWN_MEMBER_ID, MEMBER_ID_REQUIRED: a consumer rejoining under a member id its group has forgotten (see
  // kafkajs-rejoin.ts), which kafkajs answers by joining afresh.
  const routine = new Set([
    'GROUP_LOAD_IN_PROGRESS',
    'GROUP_COORDINATOR_NOT_AVAILABLE',
    'NOT_COORDINATOR_FOR_GROUP',
    'REBALANCE_IN_PROGRESS',
    'UNKNOWN_MEMBER_ID',
    'MEMBER_ID_REQUIRED',
  ]);
  return new Map(errorCodes.filter((e) => e.retriable || routine.has(e.type)).map((e) => [e.message, routine.has(e.type) ? 'debug' : 'warn']));
})();

/** A kafkajs logCreator writing to `log` (with `fields` on every line). */
export function kafkajsLogCreator(log: Logger): logCreator {
  return () => (entry: LogEntry) => {
    const { message, ...extra } = entry.log;
    const fields = { component: 'kafkajs', namespace: entry.namespace, ...extra };
    const expected =
      typeof extra.error === 'string' ? expectedConditions.get(extra.error) : reportedBySluice(entry.namespace, message) ? 'debug' : undefined;
    const level =
      entry.level === KafkaLogLevel.ERROR ? (expected ?? 'error') : entry.level === KafkaLogLevel.WARN ? (expected ?? 'warn') : 'debug';
    log[level](fields, message);
  };
}

/** Lines about conditions sluice reports itself: connection attempts, and the consumer's crash and restart. */
function reportedBySluice(namespace: string, message: string): boolean {
  if (namespace === 'Connection') return message.startsWith('Connection error') || message.startsWith('Connection timeout');
  if (namespace === 'BrokerPool') return message.startsWith('Failed to connect to seed broker');
  if (namespace === 'Consumer') return message.startsWith('Crash:') || message.startsWith('Restarting the consumer');
  return false;
}
