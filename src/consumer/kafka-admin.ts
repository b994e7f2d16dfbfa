/**
 * Small admin and producer helpers for sluice's own tools (the demo), kept here so that kafkajs stays behind
 * src/consumer.
 */
import kafkajs from 'kafkajs';
import type { HeaderValue } from '../record.js';
import { scanTopic } from './topic-scan.js';

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
  /** As text; null where the record carries the name with no value. */
  headers: Record<string, string | null | Array<string | null>>;
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
      const out: ToolRecord[] = [];
      await scanTopic(kafka, topic, { from }, (records) => {
        for (const r of records) {
          const headers: ToolRecord['headers'] = {};
          for (const [name, value] of Object.entries(r.headers)) {
            if (value !== undefined) headers[name] = Array.isArray(value) ? value.map(headerText) : headerText(value);
          }
          out.push({ partition: r.partition, offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value, headers });
        }
      });
      return out.sort((a, b) => a.partition - b.partition || (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
    },
    async close() {
      await producer.disconnect();
      await admin.disconnect();
    },
  };
}

const headerText = (value: HeaderValue): string | null => value?.toString() ?? null;
