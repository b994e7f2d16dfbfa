/**
 * The one module that speaks kafkajs. It joins the consumer group, hands fetched batches over as SourceRecords,
 * and commits offsets only when asked to, for partitions this member still owns.
 *
 * kafkajs facts this relies on (node_modules/kafkajs/src/consumer):
 * - With `autoCommit: false` the runner never commits on its own (runner.js autoCommitOffsets*); resolveOffset only
 *   moves the local fetch position (offsetManager.resolveOffset), so fetching continues while batches wait in
 *   sluice's buffers, and nothing is committed until `commitOffsets` is called after a flush.
 * - commitOffsets is a silent no-op once the runner has stopped (runner.js commitOffsets): shutdown must flush and
 *   commit before `disconnect()`, and pauses all partitions instead of stopping to end fetching.
 * - A fetch covers more offsets than its records: control records and aborted records are filtered out, and
 *   compaction leaves holes. Each batch is handed over with the range it covers, from the offset it was fetched
 *   from (kafkajs' `batch.fetchedOffset`) to `batch.lastOffset()`, which counts filtered records; batches with
 *   nothing but filtered records are handed over too (kafkajs-filtered-batches.ts).
 * - kafkajs has no revoke callback, and an explicit commit after a rebalance uses the new generation, so the broker
 *   would accept it for a partition another member now owns. Every rebalance, rejoin or crash starts a new local
 *   epoch; a commit or flush carrying an older epoch is refused.
 */
import kafkajs, { type Consumer, type EachBatchPayload } from 'kafkajs';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { errorMessage } from '../errors.js';
import { partitionKey, type FetchedRange, type SourceRecord } from '../record.js';
import { deliverFilteredBatches } from './kafkajs-filtered-batches.js';
import { kafkajsLogCreator } from './kafkajs-log.js';

const { Kafka, logLevel: KafkaLogLevel } = kafkajs;


export interface Assignment {
  topic: string;
  partitions: number[];
}

/** Where a partition resumes; undefined: from the group's committed offset, then `startFrom`. */
export interface PartitionPosition {
  topic: string;
  partition: number;
  offset: string | undefined;
}

export interface SourceHandlers {
  /** One fetch of a partition: the offsets it covers and the records in them (possibly none). */
  onRange(topic: string, partition: number, range: FetchedRange, epoch: number): void;
  /** The end of the partition as the broker reported it with the last fetch: for the lag figure. */
  onHighWatermark(topic: string, partition: number, highWatermark: string): void;
  /** An offset reached the group (after a flush, or where a claimed partition resumes). */
  onCommitted(topic: string, partition: number, nextOffset: string): void;
  /** A rebalance started or completed: buffered records of the previous epoch are void. */
  onRebalance(assigned: Assignment[]): void;
  /** The consumer crashed; `restarting` says whether kafkajs rejoins by itself. */
  onCrash(error: Error, restarting: boolean): void;
  /**
   * Exactly-once delivery: where each newly assigned partition resumes, from the offsets stored with the data.
   * Until it resolves the partitions are not fetched. It settles only once it has an answer or the assignment is over.
   */
  position?(assigned: Assignment[], epoch: number): Promise<PartitionPosition[]>;
}

export class KafkaSource {
  readonly #options: ResolvedOptions;
  readonly #log: Logger;
  readonly #consumer: Consumer;
  #epoch = 0;
  #assigned = new Set<string>();
  #fetching = true;
  /** Partitions waiting for their start position: not fetched, their records not handed over. */
  #gated = new Set<string>();
  /** Partitions the batcher paused (backpressure, retry): they stay paused when their gate opens. */
  #batcherPaused = new Set<string>();
  /** disconnect() was called: the consumer must not come back. */
  #closed = false;
  /** consumer.run() was called: pause/resume/commit are only valid from then on. */
  #running = false;
  #handlers: SourceHandlers | undefined;

  constructor(options: ResolvedOptions, log: Logger) {
    this.#options = options;
    this.#log = log.child({ component: 'kafka' });
    const kafka = new Kafka({
      clientId: options.kafka.clientId,
      brokers: options.kafka.brokers,
      logLevel: KafkaLogLevel.WARN,
      logCreator: kafkajsLogCreator(this.#log),
    });
    this.#consumer = kafka.consumer({
      groupId: options.kafka.groupId,
      sessionTimeout: options.kafka.sessionTimeoutMs,
      heartbeatInterval: options.kafka.heartbeatIntervalMs,
      // Partitions added to a subscribed topic show in the metadata; kafkajs then rejoins to have them assigned.
      metadataMaxAge: options.kafka.metadataMaxAgeMs,
      // Rebalances wait for members to rejoin; a flush is bounded by the statement timeout.
      rebalanceTimeout: Math.max(60_000, options.database.statementTimeoutMs * 2),
      // Buffered records keep their whole fetch response alive (kafkajs slices values out of it), so one fetch is
      // kept to a small share of the buffer cap: memory follows maxBufferedBytes, not the backlog.
      maxBytesPerPartition: Math.min(options.batching.maxBatchBytes, 1024 * 1024),
      maxBytes: Math.max(1024 * 1024, Math.min(10 * 1024 * 1024, Math.floor(options.batching.maxBufferedBytes / 4))),
      // How long the broker holds a fetch with no data, and how long kafkajs sleeps when every partition is paused
      // for backpressure: short, so that a resumed partition is fetched again at once and shutdown is quick.
      maxWaitTimeInMs: 100,
      // kafkajs restarts a crashed consumer by itself. Not once sluice has disconnected it: a join that was in
      // progress during the disconnect crashes, and its restart would rejoin the group for a process that stopped.
      retry: { restartOnFailure: async () => !this.#closed },
    });
  }

  /** Whether records fetched under `epoch` still belong to this member. */
  isCurrent(epoch: number): boolean {
    return epoch === this.#epoch;
  }

  async start(topics: string[], handlers: SourceHandlers): Promise<void> {
    this.#handlers = handlers;
    const { GROUP_JOIN, REBALANCING, CRASH } = this.#consumer.events;
    this.#consumer.on(REBALANCING, () => {
      this.#epoch++;
      this.#assigned.clear();
      this.#gated.clear();
      handlers.onRebalance([]);
    });
    this.#consumer.on(GROUP_JOIN, (event) => {
      this.#epoch++;
      const epoch = this.#epoch;
      const assigned = Object.entries(event.payload.memberAssignment).map(([topic, partitions]) => ({ topic, partitions }));
      this.#assigned = new Set(assigned.flatMap(({ topic, partitions }) => partitions.map((p) => partitionKey(topic, p))));
      this.#log.info({ assigned, epoch }, 'joined the group');
      handlers.onRebalance(assigned);
      // A consumer that kafkajs restarted after a crash starts unpaused: a stopped one must stay stopped.
      if (!this.#fetching) this.#guard('pause', () => this.#consumer.pause(assigned.map(({ topic }) => ({ topic }))));
      if (handlers.position && this.#fetching) this.#gate(assigned, epoch, handlers.position);
    });
    this.#consumer.on(CRASH, (event) => {
      this.#epoch++;
      this.#assigned.clear();
      this.#gated.clear();
      handlers.onCrash(event.payload.error, event.payload.restart);
    });
    await this.#consumer.connect();
    for (const topic of topics) {
      await this.#consumer.subscribe({ topic, fromBeginning: this.#options.kafka.startFrom === 'earliest' });
    }
    this.#running = true;
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: deliverFilteredBatches((payload) => this.#onBatch(payload, handlers)),
    });
  }

  /**
   * Holds newly assigned partitions until `position` says where they resume. kafkajs emits GROUP_JOIN before its
   * first fetch of the new assignment, so pausing here means nothing is fetched from the wrong place; a fetch that
   * slips through anyway is dropped in #onBatch, and the stored-offset check in the sink refuses a wrong start.
   */
  #gate(assigned: Assignment[], epoch: number, position: NonNullable<SourceHandlers['position']>): void {
    for (const { topic, partitions } of assigned) for (const p of partitions) this.#gated.add(partitionKey(topic, p));
    if (assigned.length > 0) this.#guard('pause', () => this.#consumer.pause(assigned));
    position(assigned, epoch).then(
      (positions) => {
        if (!this.isCurrent(epoch)) return;
        for (const { topic, partition, offset } of positions) {
          if (offset === undefined) continue;
          this.#guard('seek', () => this.#consumer.seek({ topic, partition, offset }));
          // The group's committed offset follows, so that lag and autoscalers see where sluice really is.
          void this.commit(topic, partition, offset, epoch);
        }
        this.#log.info(
          { epoch, positions: Object.fromEntries(positions.map((p) => [partitionKey(p.topic, p.partition), p.offset])) },
          'assigned partitions resume from the offsets stored with the data',
        );
        for (const { topic, partitions } of assigned) {
          for (const partition of partitions) {
            this.#gated.delete(partitionKey(topic, partition));
            this.#applyPause(topic, partition);
          }
        }
      },
      (error: unknown) => this.#log.debug({ err: error, epoch }, `positioning the assignment ended: ${errorMessage(error)}`),
    );
  }

  /** Moves the fetch position of a partition (exactly-once: back to the offsets stored with the data). */
  reposition(topic: string, partition: number, offset: string, epoch: number): void {
    if (!this.isCurrent(epoch) || !this.#running) return;
    this.#guard('seek', () => this.#consumer.seek({ topic, partition, offset }));
  }

  async #onBatch(payload: EachBatchPayload, handlers: SourceHandlers): Promise<void> {
    const { batch } = payload;
    if (!this.#fetching || !payload.isRunning() || payload.isStale()) return;
    // Not resolved: the partition is fetched again from its position once its gate opens.
    if (this.#gated.has(partitionKey(batch.topic, batch.partition))) return;
    const epoch = this.#epoch;
    const records: SourceRecord[] = new Array(batch.messages.length);
    for (let i = 0; i < batch.messages.length; i++) {
      const m = batch.messages[i]!;
      records[i] = {
        topic: batch.topic,
        partition: batch.partition,
        offset: m.offset,
        key: m.key ?? null,
        value: m.value ?? null,
        timestamp: m.timestamp,
        headers: m.headers ?? {},
        sizeBytes: (m.key?.length ?? 0) + (m.value?.length ?? 0) + headerBytes(m.headers),
      };
    }
    // lastOffset() is the last offset the fetch returned at or after the fetch position, control and aborted
    // records included (or the fetch position itself when compaction left nothing there).
    const lastOffset = batch.lastOffset();
    const fromOffset = String((batch as unknown as { fetchedOffset: string | number }).fetchedOffset);
    handlers.onHighWatermark(batch.topic, batch.partition, batch.highWatermark);
    handlers.onRange(batch.topic, batch.partition, { fromOffset, toOffset: (BigInt(lastOffset) + 1n).toString(), records }, epoch);
    // Moves kafkajs' fetch position only (autoCommit is off): the range is now in sluice's buffer.
    payload.resolveOffset(lastOffset);
    await payload.heartbeat();
  }

  /** Commits `nextOffset` for a partition, unless a rebalance happened since `epoch`. Failures are logged, not thrown. */
  async commit(topic: string, partition: number, nextOffset: string, epoch: number): Promise<boolean> {
    if (!this.isCurrent(epoch) || !this.#assigned.has(partitionKey(topic, partition))) {
      this.#log.debug({ topic, partition, nextOffset }, 'commit skipped: partition no longer owned');
      return false;
    }
    try {
      await this.#consumer.commitOffsets([{ topic, partition, offset: nextOffset }]);
      this.#handlers?.onCommitted(topic, partition, nextOffset);
      return true;
    } catch (error) {
      // The rows are in PostgreSQL; an uncommitted offset only means they may be read and upserted again.
      this.#log.warn({ topic, partition, nextOffset, err: error }, `offset commit failed: ${errorMessage(error)}`);
      return false;
    }
  }

  /**
   * Pauses one partition. Not once fetching has stopped: kafkajs would turn the topic-wide pause into a
   * per-partition one and fetch the topic's other partitions again.
   */
  pause(topic: string, partition: number): void {
    this.#batcherPaused.add(partitionKey(topic, partition));
    this.#applyPause(topic, partition);
  }

  resume(topic: string, partition: number): void {
    this.#batcherPaused.delete(partitionKey(topic, partition));
    this.#applyPause(topic, partition);
  }

  /** A partition is fetched unless the batcher paused it or it waits for its position. */
  #applyPause(topic: string, partition: number): void {
    if (!this.#fetching || !this.#running) return;
    const key = partitionKey(topic, partition);
    const paused = this.#batcherPaused.has(key) || this.#gated.has(key);
    this.#guard(paused ? 'pause' : 'resume', () =>
      paused ? this.#consumer.pause([{ topic, partitions: [partition] }]) : this.#consumer.resume([{ topic, partitions: [partition] }]),
    );
  }

  /**
   * kafkajs throws from pause/resume while its consumer group is gone (between a crash and the rejoin). The
   * partition is then no longer this member's, and the rejoin starts from fresh fetch state: logging is the handling.
   */
  #guard(what: string, action: () => void): void {
    try {
      action();
    } catch (error) {
      this.#log.debug({ err: error }, `${what} skipped: ${errorMessage(error)}`);
    }
  }

  /** Ends fetching without stopping the consumer, so that commits still go through during the drain. */
  stopFetching(topics: string[]): void {
    this.#fetching = false;
    if (this.#running) this.#guard('pause', () => this.#consumer.pause(topics.map((topic) => ({ topic }))));
  }

  /** Leaves the group and closes connections. */
  async disconnect(): Promise<void> {
    this.#closed = true;
    this.#epoch++;
    await this.#consumer.disconnect();
  }
}

/** What a record's headers hold: names and values, in bytes. They count in maxRecordBytes and the buffer cap. */
function headerBytes(headers: Record<string, Buffer | string | Array<Buffer | string> | undefined> | undefined): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(headers ?? {})) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) bytes += Buffer.byteLength(name) + Buffer.byteLength(v);
  }
  return bytes;
}
