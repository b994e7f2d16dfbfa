import { randomUUID } from 'node:crypto';
import kafkajs, { type Admin, type Producer } from 'kafkajs';
import pg from 'pg';
import { connectKafkaTools, type ToolRecord } from '../../src/consumer/kafka-admin.js';
import { inject, onTestFinished } from 'vitest';

const { Kafka, logLevel } = kafkajs;

export const brokers = (): string[] => inject('kafkaBrokers').split(',');
export const databaseUrl = (): string => inject('databaseUrl');

/** A name no other test (or earlier run) uses: topics, groups and tables are never shared. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/** Polls `check` until it returns a value other than undefined, null or false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  description: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 60_000, intervalMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A pg client closed when the test ends. */
export async function database(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  onTestFinished(() => client.end());
  return client;
}

/** Holds `table` in SHARE mode, so that every INSERT into it waits, until `release` is called (or the test ends). */
/** A fresh topic and a fresh table (`CREATE TABLE <name> (<columns>)`), with the clients that reach them. */
export async function topicAndTable(o: { partitions: number; topic: string; table: string; columns: string }) {
  const kafka = await KafkaHelper.connect();
  const topic = await kafka.createTopic(o.partitions, o.topic);
  const db = await database();
  const table = uniqueName(o.table);
  await db.query(`CREATE TABLE ${table} (${o.columns})`);
  return { kafka, topic, db, table };
}

export async function lockTable(table: string): Promise<{ release(): Promise<void> }> {
  const locker = await database();
  await locker.query('BEGIN');
  await locker.query(`LOCK TABLE ${table} IN SHARE MODE`);
  return { release: async () => void (await locker.query('COMMIT')) };
}

/** Waits until a session of sluice's consumer group waits on a lock (its flush is blocked). */
export async function waitForSluiceOnLock(groupId: string, description = 'a sluice flush waiting on a lock'): Promise<void> {
  const db = await database();
  await waitFor(description, async () => {
    const waiting = await db.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = $1`, [`sluice ${groupId}`]);
    return waiting.rows.length > 0;
  });
}

export class KafkaHelper {
  readonly admin: Admin;
  readonly producer: Producer;
  readonly #kafka: InstanceType<typeof Kafka>;
  readonly #brokers: string[];
  private constructor(kafka: InstanceType<typeof Kafka>, brokerList: string[], admin: Admin, producer: Producer) {
    this.#kafka = kafka;
    this.#brokers = brokerList;
    this.admin = admin;
    this.producer = producer;
  }

  /** Connected admin and producer (to the test stack's broker unless told), disconnected when the test ends. */
  static async connect(brokerList: string[] = brokers()): Promise<KafkaHelper> {
    // Helpers fail through rejected calls; kafkajs' retry chatter (a coordinator still loading) is noise.
    const kafka = new Kafka({ clientId: 'sluice-test', brokers: brokerList, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await admin.connect();
    await producer.connect();
    onTestFinished(async () => {
      await producer.disconnect();
      await admin.disconnect();
    });
    return new KafkaHelper(kafka, brokerList, admin, producer);
  }

  /**
   * A transactional producer (its own transactional id), disconnected when the test ends: every transaction it
   * commits or aborts leaves a control record in the log, so offsets are no longer contiguous.
   */
  async transactionalProducer(): Promise<Producer> {
    const producer = this.#kafka.producer({
      transactionalId: uniqueName('tx'),
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    onTestFinished(() => producer.disconnect());
    return producer;
  }

  /** Sum of the end offsets of a topic's partitions: how many records it holds (no compaction, no transactions). */
  async recordCount(topic: string): Promise<number> {
    return [...(await this.endOffsets(topic)).values()].reduce((sum, high) => sum + Number(high), 0);
  }

  /** Every record of a topic up to its current end, read with sluice's own tools. */
  async readAll(topic: string): Promise<ToolRecord[]> {
    const tools = await connectKafkaTools(this.#brokers, 'sluice-test-reader');
    try {
      return await tools.read(topic);
    } finally {
      await tools.close();
    }
  }

  async createTopic(partitions: number, prefix = 'topic', configs: Record<string, string> = {}): Promise<string> {
    const topic = uniqueName(prefix);
    const configEntries = Object.entries(configs).map(([name, value]) => ({ name, value }));
    await this.admin.createTopics({ topics: [{ topic, numPartitions: partitions, configEntries }], waitForLeaders: true });
    return topic;
  }

  /**
   * A plain kafkajs consumer (eachMessage), as an application sharing the process with sluice would run one; stopped
   * when the test ends. Answers the values it has received so far (UTF-8 text), and the fetched batches it has
   * processed as `partition@firstOffset`: the same one twice means the consumer fetched a batch again without
   * moving past it.
   */
  async plainConsumer(topic: string): Promise<{ received: string[]; batches: string[] }> {
    const consumer = this.#kafka.consumer({ groupId: uniqueName('plain'), maxWaitTimeInMs: 100 });
    await consumer.connect();
    onTestFinished(() => consumer.disconnect());
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen = { received: [] as string[], batches: [] as string[] };
    consumer.on(consumer.events.START_BATCH_PROCESS, ({ payload }) => void seen.batches.push(`${payload.partition}@${payload.firstOffset}`));
    await consumer.run({ eachMessage: async ({ message }) => void seen.received.push(message.value?.toString('utf8') ?? '') });
    return seen;
  }

  /** Sends records in chunks; `partition` pins a record to one partition. */
  async produce(
    topic: string,
    records: Array<{ key: string | Buffer | null; value: string | Buffer | null; partition?: number; timestamp?: string }>,
    chunk = 2_000,
  ): Promise<void> {
    for (let i = 0; i < records.length; i += chunk) {
      await this.producer.send({ topic, acks: -1, messages: records.slice(i, i + chunk) });
    }
  }

  /** Partition → next offset to write (the log end). */
  async endOffsets(topic: string): Promise<Map<number, string>> {
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, o.high]));
  }

  /** Partition → offset committed by the group (-1 when none). */
  async committedOffsets(groupId: string, topic: string): Promise<Map<number, string>> {
    const [result] = await this.admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((result?.partitions ?? []).map((p) => [p.partition, p.offset]));
  }

  /** True once the group has committed the end offset of every partition. */
  async isFullyCommitted(groupId: string, topic: string): Promise<boolean> {
    const [end, committed] = await Promise.all([this.endOffsets(topic), this.committedOffsets(groupId, topic)]);
    return [...end].every(([partition, high]) => committed.get(partition) === high);
  }
}
