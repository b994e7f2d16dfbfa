/**
 * Small admin and producer helpers for sluice's own tools (the demo), kept here so that kafkajs stays behind
 * src/consumer.
 */
import kafkajs from 'kafkajs';
import { deliverFilteredBatches } from './kafkajs-filtered-batches.js';

const { Kafka, logLevel } = kafkajs;

export interface KafkaTools {
  ensureTopic(topic: string, partitions: number): Promise<void>;
  produce(topic: string, records: Array<{ key: string | null; value: string | null }>): Promise<void>;
  /** Partition → log end offset. */
  endOffsets(topic: string): Promise<Map<number, string>>;
  /** Partition → offset committed by the group, or -1. */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, string>>;
  /** Records of a topic from `from` (partition → offset; default the start) up to its current end. */
  read(topic: string, from?: Map<number, string>): Promise<ToolRecord[]>;
  close(): Promise<void>;
}

/** A record read back; header values as UTF-8 text, several values of one name in order. */
export interface ToolRecord {
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string | string[]>;
}

export async function connectKafkaTools(brokers: string[], clientId = 'sluice-tools'): Promise<KafkaTools> {
  // Failures surface as rejected calls; kafkajs' own retry chatter (e.g. a coordinator still loading) is noise here.
  const kafka = new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await admin.connect();
  await producer.connect();
  return {
    async ensureTopic(topic, partitions) {
      const existing = await admin.listTopics();
      if (!existing.includes(topic)) {
        await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
      }
    },
    async produce(topic, records) {
      for (let i = 0; i < records.length; i += 5_000) {
        await producer.send({ topic, acks: -1, messages: records.slice(i, i + 5_000) });
      }
    },
    async endOffsets(topic) {
      return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o.high]));
    },
    async committedOffsets(groupId, topic) {
      const [result] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return new Map((result?.partitions ?? []).map((p) => [p.partition, p.offset]));
    },
    async read(topic, from = new Map()) {
      // Offsets are not contiguous (control records of transactions, compaction), so a partition is read until the
      // fetch position reaches the end it had when the read began, not until a count of records.
      const end = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
      const start = (partition: number) => BigInt(from.get(partition) ?? '0');
      const pending = new Set([...end].filter(([partition, high]) => high > start(partition)).map(([partition]) => partition));
      const out: ToolRecord[] = [];
      if (pending.size === 0) return out;
      const consumer = kafka.consumer({ groupId: `${clientId}-reader-${Date.now()}`, maxWaitTimeInMs: 100 });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic, fromBeginning: true });
        let finished: () => void = () => undefined;
        const done = new Promise<void>((resolve) => (finished = resolve));
        await consumer.run({
          // Also fetches of only control records: a topic that ends with a transaction marker is read to its end.
          eachBatch: deliverFilteredBatches(async ({ batch }) => {
            const { partition } = batch;
            for (const message of batch.messages) {
              if (BigInt(message.offset) < start(partition) || BigInt(message.offset) >= end.get(partition)!) continue;
              const headers: ToolRecord['headers'] = {};
              for (const [name, value] of Object.entries(message.headers ?? {})) {
                if (value !== undefined) headers[name] = Array.isArray(value) ? value.map(String) : value.toString();
              }
              out.push({ partition, offset: message.offset, timestamp: message.timestamp, key: message.key, value: message.value, headers });
            }
            if (BigInt(batch.lastOffset()) + 1n >= end.get(partition)!) pending.delete(partition);
            if (pending.size === 0) finished();
          }),
        });
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 30_000)));
        const outcome = await Promise.race([done, timeout]);
        clearTimeout(timer);
        if (outcome === 'timeout') throw new Error(`read ${out.length} records of ${topic} within 30 s, partitions ${[...pending].join(', ')} unfinished`);
      } finally {
        await consumer.disconnect();
      }
      return out.sort((a, b) => a.partition - b.partition || (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
    },
    async close() {
      await producer.disconnect();
      await admin.disconnect();
    },
  };
}
