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
  close(): Promise<void>;
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
    async close() {
      await producer.disconnect();
      await admin.disconnect();
    },
  };
}
