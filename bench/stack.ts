/** The benchmark's handles on the stack: a Kafka admin and producer, a PostgreSQL client, and small waits. */
import kafkajs from 'kafkajs';
import pg from 'pg';
import { envelope, generate, type DatasetShape, type Order } from './dataset.js';

const { Kafka, logLevel, CompressionTypes } = kafkajs;

export interface BenchStack {
  db: pg.Client;
  /** `configs`: topic settings, such as `message.timestamp.type`. */
  recreateTopic(topic: string, partitions: number, configs?: Record<string, string>): Promise<void>;
  /** Produces the dataset, partition by partition as generated; returns the bytes of all values. */
  /** Writes the dataset; each value is `encode(order)` (by default Connect's JSON envelope). Answers the value bytes. */
  preload(topic: string, shape: DatasetShape, onProgress?: (done: number) => void, encode?: (order: Order) => string | Buffer): Promise<number>;
  /** Sends orders now (their Kafka timestamp is the send time); used by the fixed-rate producer. */
  send(topic: string, records: Array<{ partition: number; order: Order }>): Promise<void>;
  endOffsets(topic: string): Promise<Map<number, bigint>>;
  committedTotal(groupId: string, topic: string): Promise<bigint>;
  isFullyCommitted(groupId: string, topic: string): Promise<boolean>;
  close(): Promise<void>;
}

export async function connectStack(brokers: string[], databaseUrl: string): Promise<BenchStack> {
  const kafka = new Kafka({ clientId: 'sluice-bench', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await admin.connect();
  await producer.connect();
  const db = new pg.Client({ connectionString: databaseUrl, application_name: 'sluice-bench' });
  await db.connect();

  const endOffsets = async (topic: string) =>
    new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
  const committed = async (groupId: string, topic: string) => {
    const [result] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((result?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  };

  return {
    db,
    async recreateTopic(topic, partitions, configs = {}) {
      if ((await admin.listTopics()).includes(topic)) {
        await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
        await waitUntil(`topic ${topic} deleted`, async () => !(await admin.listTopics()).includes(topic), 30_000);
      }
      await admin.createTopics({
        topics: [{ topic, numPartitions: partitions, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
        waitForLeaders: true,
      });
    },
    async preload(topic, shape, onProgress, encode = envelope) {
      const chunk = 4_000;
      let bytes = 0;
      let pending: Array<{ partition: number; key: string; value: string | Buffer }> = [];
      let done = 0;
      const flush = async () => {
        // Each message names its partition; kafkajs groups them into one request per broker.
        await producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages: pending });
        done += pending.length;
        pending = [];
        onProgress?.(done);
      };
      for (const r of generate(shape)) {
        const value = encode(r.order);
        bytes += value.length;
        pending.push({ partition: r.partition, key: r.key, value });
        if (pending.length >= chunk) await flush();
      }
      if (pending.length > 0) await flush();
      return bytes;
    },
    async send(topic, records) {
      await producer.send({
        topic,
        acks: -1,
        messages: records.map((r) => ({ partition: r.partition, key: r.order.id, value: envelope(r.order) })),
      });
    },
    endOffsets,
    async committedTotal(groupId, topic) {
      let total = 0n;
      for (const offset of (await committed(groupId, topic)).values()) if (offset > 0n) total += offset;
      return total;
    },
    async isFullyCommitted(groupId, topic) {
      const [end, done] = await Promise.all([endOffsets(topic), committed(groupId, topic)]);
      for (const [partition, high] of end) if (high > 0n && done.get(partition) !== high) return false;
      return true;
    },
    async close() {
      await producer.disconnect();
      await admin.disconnect();
      await db.end();
    },
  };
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
