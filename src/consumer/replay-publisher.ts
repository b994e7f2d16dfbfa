/**
 * A replay's Kafka side: records published again and the replay's progress committed in one Kafka transaction
 * (consume-transform-produce): the replay's own group's offsets on the DLQ topic move if and only if the records
 * it published are committed. A replay resumed after a crash starts from those offsets, so no record is published
 * twice; aborted sends are never seen by read_committed consumers (sluice reads read_committed). The transactional
 * id is the replay's: a second run of the same replay fences the first.
 */
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { KafkaError, errorMessage } from '../errors.js';
import type { OutgoingRecord } from '../dlq/record-producer.js';
import { closeKafkaClient, createKafkaClient } from './kafka-client.js';
import { kafkaOperatorFix } from './kafka-errors.js';
import { kafkaMessages } from './kafkajs-headers.js';

export interface ReplayPublisher {
  /**
   * Registers the transactional id, which fences an earlier run of the same replay still going (its next transaction
   * fails) and waits for its transaction in flight to end: progress read after this is final.
   */
  fence(): Promise<void>;
  /**
   * In one transaction: `records` (topic → records), and the replay group's next offsets on `sourceTopic`
   * (partition → offset). Resolves once the transaction is committed.
   */
  publish(records: Map<string, OutgoingRecord[]>, progress: { groupId: string; topic: string; offsets: Map<number, string> }): Promise<void>;
  close(): Promise<void>;
}

export async function connectReplayPublisher(options: ResolvedOptions, transactionalId: string, log: Logger): Promise<ReplayPublisher> {
  const kafka = createKafkaClient(options, `${options.kafka.clientId}-replay`, log, 'error');
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  try {
    await producer.connect();
  } catch (error) {
    throw new KafkaError(`connecting the replay producer failed: ${errorMessage(error)}`, { cause: error, retriable: true });
  }
  return {
    async fence() {
      try {
        // kafkajs registers the transactional id with the first transaction; an empty one ends without a request.
        await (await producer.transaction()).abort();
      } catch (error) {
        throw new KafkaError(`starting the replay's transactions failed: ${errorMessage(error)}`, { cause: error, retriable: true });
      }
    },
    async publish(records, progress) {
      const transaction = await producer.transaction();
      try {
        for (const [topic, messages] of records) if (messages.length > 0) await transaction.send({ topic, acks: -1, messages: kafkaMessages(messages) });
        await transaction.sendOffsets({
          consumerGroupId: progress.groupId,
          topics: [{ topic: progress.topic, partitions: [...progress.offsets].map(([partition, offset]) => ({ partition, offset })) }],
        });
        await transaction.commit();
      } catch (error) {
        await transaction.abort().catch((abortError: unknown) => log.debug({ err: abortError }, 'aborting the replay transaction failed'));
        const fix = kafkaOperatorFix(error, { access: 'write' });
        throw new KafkaError(`publishing replayed records failed: ${errorMessage(error)}${fix ? ` (${fix})` : ''}`, { cause: error, retriable: true });
      }
    },
    close: async () => {
      await closeKafkaClient(kafka, () => producer.disconnect());
    },
  };
}
