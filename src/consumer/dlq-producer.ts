/**
 * The DLQ's Kafka side: an idempotent producer that waits for every in-sync replica (acks=all), and the check at
 * start-up that each DLQ topic exists. Kept in src/consumer so that kafkajs stays behind this folder.
 */
import kafkajs from 'kafkajs';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { KafkaError, errorMessage } from '../errors.js';
import type { OutgoingRecord, RecordProducer } from '../dlq/record-producer.js';
import { kafkaOperatorFix } from './kafka-errors.js';
import { closeKafkaClient, createKafkaClient, kafkaRetry } from './kafka-client.js';
import { kafkaMessages } from './kafkajs-headers.js';

const { ConfigResourceTypes } = kafkajs;

/** Room for the provenance headers on top of the largest record the source topic accepts. */
const headerRoomBytes = 64 * 1024;

export interface DlqTopic {
  source: string;
  dlq: string;
}

export async function connectDlqProducer(options: ResolvedOptions, topics: DlqTopic[], log: Logger): Promise<RecordProducer> {
  const kafkaLog = log.child({ component: 'kafkajs', role: 'dlq' });
  // A failed send reaches sluice as an error and is logged there, with the partition that waits on it.
  const kafka = createKafkaClient(options, `${options.kafka.clientId}-dlq`, kafkaLog, 'error');
  const admin = kafka.admin();
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // Bounded, so that a DLQ that cannot take records fails the send and the partition's retry loop takes over
    // (with its backoff and its log line) instead of the send hanging. Each send stays idempotent across its own
    // retries; a later retry of the batch may write a record twice, which replay dedupes by source coordinates.
    retry: kafkaRetry(options),
  });
  let maxMessageBytes: Map<string, number>;
  try {
    await admin.connect();
    await ensureTopics(admin, topics, options.dlq.createTopics, log);
    maxMessageBytes = await topicMaxMessageBytes(admin, topics.map((t) => t.dlq)).catch((error: unknown) => {
      // Without DescribeConfigs on the DLQ topics, sends are sized for the broker's default limit (1 MiB).
      log.warn({ err: error }, `reading the DLQ topics' max.message.bytes failed (${errorMessage(error)}); DLQ sends assume 1 MiB`);
      return new Map<string, number>();
    });
    await producer.connect();
  } catch (error) {
    if (error instanceof KafkaError) throw error;
    const fix = kafkaOperatorFix(error, { access: 'write' });
    throw new KafkaError(`checking the DLQ topics and connecting the DLQ producer failed: ${errorMessage(error)}`, { cause: error, retriable: true, ...(fix ? { operatorFix: fix } : {}) });
  } finally {
    await admin.disconnect();
  }
  return {
    async send(topic: string, records: OutgoingRecord[]) {
      try {
        await producer.send({ topic, acks: -1, messages: kafkaMessages(records) });
      } catch (error) {
        const fix = kafkaOperatorFix(error, { topic, access: 'write' });
        throw new KafkaError(errorMessage(error), { cause: error, retriable: true, ...(fix ? { operatorFix: fix } : {}) });
      }
    },
    // Records, headers included, well under the topic's limit (batch framing aside), at most 512 KiB a request.
    maxSendBytes: (topic) => Math.min(512 * 1024, Math.floor(0.8 * (maxMessageBytes.get(topic) ?? 1024 * 1024))),
    close: async () => {
      await closeKafkaClient(kafka, () => producer.disconnect());
    },
  };
}

/** Each topic's max.message.bytes, as the broker reports it (its own default included). */
async function topicMaxMessageBytes(admin: kafkajs.Admin, topics: string[]): Promise<Map<string, number>> {
  if (topics.length === 0) return new Map();
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['max.message.bytes'] })),
  });
  return new Map(
    configs.resources.flatMap((r) => {
      const value = Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue);
      return Number.isFinite(value) && value > 0 ? [[r.resourceName, value] as const] : [];
    }),
  );
}

async function ensureTopics(admin: kafkajs.Admin, topics: DlqTopic[], create: boolean, log: Logger): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.dlq));
  if (missing.length === 0) return;
  if (!create) {
    throw new KafkaError(
      `DLQ topic(s) ${missing.map((t) => t.dlq).join(', ')} do not exist: create them, or set dlq.createTopics (SLUICE_DLQ_CREATE_TOPICS) to true`,
    );
  }
  const metadata = await admin.fetchTopicMetadata({ topics: missing.map((t) => t.source) });
  const partitions = new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: missing.map((t) => ({ type: ConfigResourceTypes.TOPIC, name: t.source, configNames: ['max.message.bytes'] })),
  });
  const maxBytes = new Map(
    configs.resources.map((r) => [r.resourceName, Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue)]),
  );
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((t) => {
      const sourceMax = maxBytes.get(t.source);
      return {
        topic: t.dlq,
        numPartitions: partitions.get(t.source) ?? 1,
        // A record the source topic took must fit in its DLQ with the provenance headers added.
        configEntries: Number.isFinite(sourceMax) ? [{ name: 'max.message.bytes', value: String(sourceMax! + headerRoomBytes) }] : [],
      };
    }),
  });
  log.info({ topics: missing.map((t) => t.dlq) }, 'created DLQ topic(s)');
}
