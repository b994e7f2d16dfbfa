/**
 * Where a replay writes, behind one interface: back to Kafka (records and the replay group's offsets in one Kafka
 * transaction), or straight into PostgreSQL through the routes' own write path (rows and the replay's offsets on the
 * DLQ topic in one PostgreSQL transaction, in the offsets table under the replay's group). Either way progress moves
 * only with what was written, and starting fences an earlier run of the same replay.
 */
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { createKafkaClient } from '../consumer/kafka-client.js';
import { kafkaMessages } from '../consumer/kafkajs-headers.js';
import type { KafkaInspector } from '../consumer/kafka-inspector.js';
import { connectReplayPublisher } from '../consumer/replay-publisher.js';
import type { DlqEntry } from '../dlq/dlq-filter.js';
import type { OutgoingRecord } from '../dlq/record-producer.js';
import { replayRecord, type ReplayStamp } from '../dlq/replay-record.js';
import { ErrorCodes, SluiceError, errorMessage, isRetriable } from '../errors.js';
import { backoffMs } from '../lifecycle/backoff.js';
import { recordHeaderBytes, type SourceRecord } from '../record.js';
import { PostgresSink } from '../sinks/postgres-sink.js';

/** One record a chunk sends somewhere: replayed to `target`, or parked. */
export type ReplayItem = { entry: DlqEntry; target: string } | { entry: DlqEntry; park: string };

export interface ReplayWriter {
  /** Fences an earlier run of the replay; answers where each DLQ partition resumes (absent: from its start). */
  start(partitions: number[]): Promise<Map<number, string>>;
  /** Writes `items`, and moves the partition's progress from `fromOffset` to `toOffset`, as one. Answers records that failed again. */
  commit(partition: number, fromOffset: string, toOffset: string, items: ReplayItem[], stamp: ReplayStamp): Promise<{ failed: DlqEntry[] }>;
  close(): Promise<void>;
}

export async function kafkaReplayWriter(
  options: ResolvedOptions,
  replayId: string,
  dlqTopic: string,
  inspector: KafkaInspector,
  log: Logger,
): Promise<ReplayWriter> {
  const groupId = `sluice-replay-${replayId}`;
  const publisher = await connectReplayPublisher(options, groupId, log);
  return {
    async start() {
      await publisher.fence();
      const committed = await inspector.committedOffsets(groupId, dlqTopic);
      return new Map([...committed].flatMap(([p, o]) => (o === undefined ? [] : [[p, o] as const])));
    },
    async commit(partition, _fromOffset, toOffset, items, stamp) {
      const out = new Map<string, OutgoingRecord[]>();
      for (const item of items) {
        const topic = 'target' in item ? item.target : item.park;
        const list = out.get(topic) ?? [];
        if (list.length === 0) out.set(topic, list);
        list.push(replayRecord(item.entry, stamp, topic));
      }
      await publisher.publish(out, { groupId, topic: dlqTopic, offsets: new Map([[partition, toOffset]]) });
      return { failed: [] };
    },
    close: () => publisher.close(),
  };
}

/**
 * Into PostgreSQL: each chunk is written by its records' route (the source topic's, or `--to`'s), with the same
 * poison handling and version guard as the service; the replay's offsets on the DLQ topic move in the same
 * transaction (the sink's exactly-once fence, under the group `sluice-replay-<id>`). Records that fail again are
 * reported, and with --park sent there first, as the service sends poison to its DLQ.
 */
export async function postgresReplayWriter(options: ResolvedOptions, replayId: string, dlqTopic: string, park: string | undefined, log: Logger): Promise<ReplayWriter> {
  const sink = new PostgresSink({ ...options, delivery: 'exactly-once', kafka: { ...options.kafka, groupId: `sluice-replay-${replayId}` } }, log);
  const producer = park ? createKafkaClient(options, `${options.kafka.clientId}-replay-park`, log, 'error').producer({ idempotent: true, maxInFlightRequests: 1 }) : undefined;
  const claims = new Map<number, string>();
  const parkRecords = async (entries: DlqEntry[], stamp: ReplayStamp) => {
    if (!producer || entries.length === 0) return;
    await producer.send({ topic: park!, acks: -1, messages: kafkaMessages(entries.map((e) => replayRecord(e, stamp, park!))) });
  };
  return {
    async start(partitions) {
      await sink.start();
      await producer?.connect();
      const claimed = await sink.claim([{ topic: dlqTopic, partitions }]);
      if (!claimed || claimed.busy.length > 0 || claimed.taken.length > 0) {
        throw new SluiceError(ErrorCodes.offsets, `replay ${replayId} is being run elsewhere (its offsets rows are held): let that run finish, or stop it`);
      }
      const resume = new Map<number, string>();
      for (const c of claimed.claims) {
        claims.set(c.partition, c.claim);
        if (c.nextOffset !== undefined) resume.set(c.partition, c.nextOffset);
      }
      return resume;
    },
    async commit(partition, fromOffset, toOffset, items, stamp) {
      const failed: DlqEntry[] = [];
      // Parked records first (acknowledged before the rows' transaction, as the service's DLQ).
      await parkRecords(items.flatMap((i) => ('park' in i ? [i.entry] : [])), stamp);
      const replayed = items.filter((i): i is { entry: DlqEntry; target: string } => 'target' in i);
      // Consecutive records of one route and one source partition form one batch (a route plan takes a batch's
      // partition from its records as one value); the batches cover the chunk's offsets without gaps.
      const runs: Array<{ target: string; sourcePartition: number | undefined; items: typeof replayed }> = [];
      for (const item of replayed) {
        const last = runs.at(-1);
        const sourcePartition = item.entry.origin.partition;
        if (last && last.target === item.target && last.sourcePartition === sourcePartition) last.items.push(item);
        else runs.push({ target: item.target, sourcePartition, items: [item] });
      }
      let from = fromOffset;
      if (runs.length === 0) runs.push({ target: '', sourcePartition: undefined, items: [] });
      for (let r = 0; r < runs.length; r++) {
        const run = runs[r]!;
        const next = runs[r + 1];
        const to = next ? next.items[0]!.entry.offset : toOffset;
        const bySource = new Map<SourceRecord, DlqEntry>();
        const records = run.items.map(({ entry }) => {
          const record = sourceRecord(entry, stamp, run.target);
          bySource.set(record, entry);
          return record;
        });
        const batch = { topic: dlqTopic, partition, records, fromOffset: from, toOffset: to, epoch: 0, claim: claims.get(partition)!, ...(run.target ? { routeTopic: run.target } : {}) };
        // Records found poison and parked are left out of later attempts, as the service does with its DLQ.
        const excluded = new Set<SourceRecord>();
        const context = {
          isCurrent: () => true,
          signal: new AbortController().signal,
          excluded,
          deadLetter: async (poison: Array<{ record: SourceRecord }>) => {
            const entries = poison.map((p) => bySource.get(p.record)!);
            await parkRecords(entries, stamp);
            for (const p of poison) excluded.add(p.record);
            failed.push(...entries);
          },
        };
        let result;
        // A transient failure (a deadlock with the service writing the same table, the database restarting) is
        // retried with backoff, as the service retries a batch; anything else ends the replay, resumable.
        for (let attempt = 0; ; attempt++) {
          try {
            result = await sink.write(batch, context);
            break;
          } catch (error) {
            if (!isRetriable(error) || attempt >= 9) throw error;
            const delayMs = backoffMs(attempt, 200, 5_000);
            log.warn({ err: error, attempt: attempt + 1, retryInMs: delayMs }, `writing replayed records failed, will retry: ${errorMessage(error)}`);
            await new Promise((resolve) => setTimeout(resolve, delayMs));
          }
        }
        if (result.fenced) {
          throw new SluiceError(ErrorCodes.offsets, `replay ${replayId}: another run of it took over ${dlqTopic}[${partition}] (${result.fenced.reason}); this run stops`);
        }
        from = to;
      }
      return { failed };
    },
    async close() {
      await producer?.disconnect().catch((error: unknown) => log.warn({ err: error }, `closing the park producer failed: ${errorMessage(error)}`));
      await sink.close();
    },
  };
}

/** The record as the service read it from its source topic, with the replay's headers. */
function sourceRecord(entry: DlqEntry, stamp: ReplayStamp, target: string): SourceRecord {
  const out = replayRecord(entry, stamp, target);
  const headers = out.headers as SourceRecord['headers'];
  const headerBytes = recordHeaderBytes(out.headers);
  return {
    topic: target,
    partition: entry.origin.partition ?? entry.partition,
    offset: entry.origin.offset ?? entry.offset,
    key: entry.key,
    value: entry.value,
    timestamp: entry.origin.timestampMs !== undefined ? String(entry.origin.timestampMs) : entry.timestamp,
    headers,
    sizeBytes: (entry.key?.length ?? 0) + (entry.value?.length ?? 0) + headerBytes,
  };
}
