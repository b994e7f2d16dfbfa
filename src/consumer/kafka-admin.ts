/**
 * Small admin and producer helpers for sluice's own tools (the demo), kept here so that kafkajs stays behind
 * src/consumer.
 */
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

export interface KafkaTools {
  ensureTopic(topic: string, partitions: number): Promise<void>;
  produce(topic: string, records: Array<{ key: string | null; value: string | null }>): Promise<void>;
  /** Partition → log end offset. */
  endOffsets(topic: string): Promise<Map<number, string>>;
  /** Partition → offset committed by the group, or -1. */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, string>>;
  /** Records of a topic from `from` (partition → offset; default the start) up to its current end, headers as text. */
  read(topic: string, from?: Map<number, string>): Promise<ToolRecord[]>;
  close(): Promise<void>;
}

export interface ToolRecord {
  partition: number;
  offset: string;
  key: string | null;
  headers: Record<string, string>;
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
      const end = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
      const remaining = new Map([...end].map(([p, high]) => [p, high - BigInt(from.get(p) ?? '0')]));
      const out: ToolRecord[] = [];
      if ([...remaining.values()].every((n) => n <= 0n)) return out;
      const consumer = kafka.consumer({ groupId: `${clientId}-reader-${Date.now()}`, maxWaitTimeInMs: 100 });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic, fromBeginning: true });
        let finished: () => void = () => undefined;
        const done = new Promise<void>((resolve) => (finished = resolve));
        await consumer.run({
          eachMessage: async ({ partition, message }) => {
            if (BigInt(message.offset) < BigInt(from.get(partition) ?? '0')) return;
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(message.headers ?? {})) {
              if (value !== undefined) headers[name] = (Array.isArray(value) ? value.at(-1)! : value).toString();
            }
            out.push({ partition, offset: message.offset, key: message.key?.toString() ?? null, headers });
            remaining.set(partition, remaining.get(partition)! - 1n);
            if ([...remaining.values()].every((n) => n <= 0n)) finished();
          },
        });
        const timeout = new Promise<void>((resolve) => setTimeout(resolve, 30_000).unref());
        await Promise.race([done, timeout]);
      } finally {
        await consumer.disconnect();
      }
      return out;
    },
    async close() {
      await producer.disconnect();
      await admin.disconnect();
    },
  };
}
