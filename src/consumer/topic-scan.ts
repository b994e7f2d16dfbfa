/**
 * Reads a topic from given offsets up to the end offsets it had when the scan began: records written later are not
 * part of it. Records are handed over batch by batch (never all held at once), in offset order per partition.
 * Offsets are not contiguous (control records of transactions, compaction), so a partition is done when the fetch
 * position reaches its captured end, not after a count of records. A group of its own, never committed to, reads it.
 */
import type { Kafka } from 'kafkajs';
import { deliverFilteredBatches } from './kafkajs-filtered-batches.js';
import { recordHeaders } from './kafkajs-headers.js';
import type { RecordHeaders } from '../record.js';

/** A record read back; headers as kafkajs hands them (Buffers; several values of one name as an array; null values). */
export interface ScannedRecord {
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
}

export interface ScanOptions {
  /** Partition → first offset to read (default: the log start). */
  from?: ReadonlyMap<number, string>;
  /**
   * Partition → offset to stop before (at most the log end when the scan began). When given, only the partitions it
   * names are read (a partition added since is not part of the scan); otherwise every partition to its end.
   */
  to?: ReadonlyMap<number, string>;
  /** Gives up when no progress was made for this long (default 30 s). */
  stallTimeoutMs?: number;
  /** After each fetch: offsets passed so far, of those the scan covers (records, control records and gaps alike). */
  onProgress?: (passedOffsets: number, totalOffsets: number) => void;
}

/**
 * `onBatch` gets the records of one fetch, and `heartbeat` to call during long work on them (a replay's rate limit):
 * the scan's group must not time the scan out. It answers 'stop' to end the scan there (a limit reached, a signal).
 */
export async function scanTopic(
  kafka: Kafka,
  topic: string,
  options: ScanOptions,
  onBatch: (records: ScannedRecord[], heartbeat: () => Promise<void>) => Promise<void | 'stop'> | void | 'stop',
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  let offsets;
  try {
    offsets = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  const end = new Map(
    offsets.map((o) => {
      const high = BigInt(o.high);
      if (!options.to) return [o.partition, high] as const;
      const to = options.to.get(o.partition);
      return [o.partition, to === undefined ? 0n : BigInt(to) < high ? BigInt(to) : high] as const;
    }),
  );
  const start = (partition: number) => BigInt(options.from?.get(partition) ?? offsets.find((o) => o.partition === partition)!.low);
  /** Partition → the next offset to hand over: where a rejoin (the scan's group rebalanced) resumes, not the start. */
  const position = new Map([...end.keys()].map((partition) => [partition, start(partition)]));
  const pending = new Set([...end].filter(([partition, high]) => high > start(partition)).map(([partition]) => partition));
  if (pending.size === 0) return;
  const total = [...pending].reduce((sum, partition) => sum + Number(end.get(partition)! - start(partition)), 0);
  const passed = () => [...end.keys()].reduce((sum, partition) => sum + Number(position.get(partition)! - start(partition)), 0);
  options.onProgress?.(0, total);
  const consumer = kafka.consumer({ groupId: `sluice-scan-${topic}-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let settle!: { resolve: () => void; reject: (error: unknown) => void };
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    let lastProgress = Date.now();
    let ended = false;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const partition of pending) consumer.seek({ topic, partition, offset: position.get(partition)!.toString() });
    });
    await consumer.run({
      autoCommit: false,
      // Also fetches of only control records: a topic that ends with a transaction marker is read to its end.
      eachBatch: deliverFilteredBatches(async ({ batch, heartbeat }) => {
        const { partition } = batch;
        if (ended) return;
        if (!pending.has(partition)) {
          // Outside the scan, or read to its end: fetching it further would only bring records the scan drops.
          consumer.pause([{ topic, partitions: [partition] }]);
          return;
        }
        const high = end.get(partition)!;
        const from = position.get(partition)!;
        const records: ScannedRecord[] = [];
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < from || offset >= high) continue;
          records.push({ partition, offset: m.offset, timestamp: m.timestamp, key: m.key, value: m.value, headers: recordHeaders(m.headers) });
        }
        lastProgress = Date.now();
        try {
          // Long work on a batch (a replay's rate) is progress too, as long as it heartbeats.
          const beat = async () => {
            lastProgress = Date.now();
            await heartbeat();
          };
          if (records.length > 0 && (await onBatch(records, beat)) === 'stop') {
            ended = true; // nothing more is handed over
            settle.resolve();
            return;
          }
          const next = BigInt(batch.lastOffset()) + 1n;
          if (next > from) position.set(partition, next < high ? next : high);
          options.onProgress?.(passed(), total);
          if (next >= high) {
            pending.delete(partition);
            consumer.pause([{ topic, partitions: [partition] }]);
          }
        } catch (error) {
          ended = true;
          settle.reject(error);
          return;
        }
        if (pending.size === 0) settle.resolve();
      }),
    });
    const stallMs = options.stallTimeoutMs ?? 30_000;
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgress > stallMs) settle.reject(new Error(`reading ${topic} made no progress for ${stallMs} ms (partitions ${[...pending].join(', ')} unfinished)`));
    }, 1_000);
    try {
      await done;
    } finally {
      clearInterval(watchdog);
    }
  } finally {
    await consumer.disconnect();
  }
}
