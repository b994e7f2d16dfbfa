/**
 * Read-mostly Kafka operations for the operator's commands (`sluice check`, `sluice offsets`): topics, the group's
 * state and committed offsets, log start and end, offsets by time, and setting a stopped group's offsets. Built on
 * the same client configuration as the service (kafka-client.ts).
 */
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { KafkaError, errorMessage } from '../errors.js';
import { closeKafkaClient, createKafkaClient } from './kafka-client.js';
import { kafkaOperatorFix } from './kafka-errors.js';

export interface TopicFound {
  topic: string;
  /** Undefined: the topic does not exist. */
  partitions: number | undefined;
}

export interface GroupFound {
  groupId: string;
  /** Kafka's group state: Empty, Stable, PreparingRebalance, CompletingRebalance, Dead (no such group). */
  state: string;
  members: number;
}

export interface PartitionOffsets {
  partition: number;
  /** The first offset still in the log. */
  logStart: string;
  /** The next offset to be written. */
  logEnd: string;
}

export class KafkaInspector {
  readonly #kafka: ReturnType<typeof createKafkaClient>;
  readonly #admin;
  readonly #options: ResolvedOptions;

  private constructor(kafka: ReturnType<typeof createKafkaClient>, admin: ReturnType<ReturnType<typeof createKafkaClient>['admin']>, options: ResolvedOptions) {
    this.#kafka = kafka;
    this.#admin = admin;
    this.#options = options;
  }

  /** Connects an admin client; a KafkaError names the brokers when they cannot be reached. */
  static async connect(options: ResolvedOptions, log: Logger): Promise<KafkaInspector> {
    const kafka = createKafkaClient(options, `${options.kafka.clientId}-admin`, log, 'error');
    const admin = kafka.admin();
    try {
      await admin.connect();
    } catch (error) {
      throw kafkaError(`cannot reach Kafka at ${options.kafka.brokers.join(',')}`, error);
    }
    return new KafkaInspector(kafka, admin, options);
  }

  async topics(names: string[]): Promise<TopicFound[]> {
    const existing = new Set(await this.#call('listing topics', () => this.#admin.listTopics()));
    const present = names.filter((n) => existing.has(n));
    const metadata = present.length > 0 ? await this.#call('reading topic metadata', () => this.#admin.fetchTopicMetadata({ topics: present })) : { topics: [] };
    const partitions = new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
    return names.map((topic) => ({ topic, partitions: partitions.get(topic) }));
  }

  async group(groupId = this.#options.kafka.groupId): Promise<GroupFound> {
    const { groups } = await this.#call(`describing group ${groupId}`, () => this.#admin.describeGroups([groupId]));
    const group = groups[0];
    return { groupId, state: group?.state ?? 'Dead', members: group?.members.length ?? 0 };
  }

  async partitionOffsets(topic: string): Promise<PartitionOffsets[]> {
    const offsets = await this.#call(`reading the offsets of ${topic}`, () => this.#admin.fetchTopicOffsets(topic));
    return offsets.map((o) => ({ partition: o.partition, logStart: o.low, logEnd: o.high })).sort((a, b) => a.partition - b.partition);
  }

  /** Partition → the group's committed offset (undefined when none). */
  async committedOffsets(groupId: string, topic: string): Promise<Map<number, string | undefined>> {
    const [result] = await this.#call(`reading group ${groupId}'s offsets`, () => this.#admin.fetchOffsets({ groupId, topics: [topic] }));
    return new Map((result?.partitions ?? []).map((p) => [p.partition, p.offset === '-1' ? undefined : p.offset]));
  }

  /** Partition → the first offset whose record's timestamp is at or after `timestampMs` (the log end if none). */
  async offsetsAtTime(topic: string, timestampMs: number): Promise<Map<number, string>> {
    const offsets = await this.#call(`finding offsets of ${topic} by time`, () => this.#admin.fetchTopicOffsetsByTimestamp(topic, timestampMs));
    const ends = new Map((await this.partitionOffsets(topic)).map((p) => [p.partition, p.logEnd]));
    return new Map(offsets.map((o) => [o.partition, o.offset === '-1' ? ends.get(o.partition)! : o.offset]));
  }

  /** Sets the group's committed offsets; Kafka refuses while the group has members. */
  async setCommitted(groupId: string, topic: string, offsets: Map<number, string>): Promise<void> {
    await this.#call(`setting group ${groupId}'s offsets`, () =>
      this.#admin.setOffsets({ groupId, topic, partitions: [...offsets].map(([partition, offset]) => ({ partition, offset })) }),
    );
  }

  async close(): Promise<void> {
    await closeKafkaClient(this.#kafka, () => this.#admin.disconnect());
  }

  async #call<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw kafkaError(what, error);
    }
  }
}

function kafkaError(what: string, error: unknown): KafkaError {
  const fix = kafkaOperatorFix(error, { access: 'read' });
  return new KafkaError(`${what}: ${errorMessage(error)}${fix ? ` (${fix})` : ''}`, { cause: error, retriable: true });
}
