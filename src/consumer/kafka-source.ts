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
 *   would accept it for a partition another member now owns. Each partition carries a local epoch, which a commit or
 *   flush must match: a partition lost (a rebalance that gives it elsewhere, a crash) takes its epoch along, and one
 *   assigned anew gets a new one. Under exactly-once a partition this member keeps through a rebalance keeps its
 *   epoch, and with it its buffer and its flush in flight: the offsets stored with the data prove, when it is claimed
 *   again, whether the buffer still starts where they end (the batcher decides). Under at-least-once nothing can
 *   prove that, so every rebalance ends every epoch.
 * - kafkajs speaks only the eager protocol: every member rejoins at every rebalance. The sticky assigner
 *   (kafkajs-sticky-assigner.ts) keeps partitions with their members so that most of them are kept.
 * - When its retries run out (the brokers unreachable, the coordinator gone), the consumer crashes: kafkajs leaves
 *   the group and disconnects (consumer/index.js onCrash), and would restart by itself only for errors it deems
 *   retriable, after a wait that grows to its maxRetryTime. It never restarts by itself here: the crash is reported,
 *   sluice's failure policy decides, and `restart()` runs the consumer again, under the member id it had
 *   (kafkajs-rejoin.ts), so that the coordinator does not wait for the old member's session to time out.
 */
import kafkajs, { type Consumer, type ConsumerRunConfig, type EachBatchPayload, type Kafka as KafkaClient } from 'kafkajs';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { errorMessage, type KafkaError } from '../errors.js';
import { partitionKey, recordHeaderBytes, type Assignment, type FetchedRange, type SourceRecord } from '../record.js';
import { kafkaConsumerError } from './kafka-errors.js';
import { deliverFilteredBatches } from './kafkajs-filtered-batches.js';
import { rejoinWithMemberId } from './kafkajs-rejoin.js';
import { closeKafkaClient, createKafkaClient, kafkaRetry } from './kafka-client.js';
import { recordHeaders } from './kafkajs-headers.js';
import { stickyAssigner, type Ownership } from './kafkajs-sticky-assigner.js';

/** How long the broker holds a fetch that finds no data, and how long kafkajs sleeps when every partition is paused. */
const fetchMaxWaitMs = 100;

/** Where a partition resumes; undefined: from the group's committed offset, then `startFrom`. */
export interface PartitionPosition {
  topic: string;
  partition: number;
  /** Where the offsets stored with the data end: committed to the group. */
  offset: string | undefined;
  /** Where fetching resumes, when not there: the end of a buffer kept through the rebalance. */
  fetchFrom?: string | undefined;
  /** `offset` was read without a lock and may lag this member's own flushes: committed only if not below them. */
  onlyForward?: boolean;
}

export interface SourceHandlers {
  /** One fetch of a partition: the offsets it covers and the records in them (possibly none). */
  onRange(topic: string, partition: number, range: FetchedRange, epoch: number): void;
  /** The end of the partition as the broker reported it with the last fetch: for the lag figure. */
  onHighWatermark(topic: string, partition: number, highWatermark: string): void;
  /** An offset reached the group (after a flush, or where a claimed partition resumes). */
  onCommitted(topic: string, partition: number, nextOffset: string): void;
  /** A rebalance started or completed: buffered records of partitions whose epoch ended are void. */
  onRebalance(assigned: Assignment[]): void;
  /** The consumer is a member of the group again (after a start, a rebalance or a restart). */
  onJoined(): void;
  /**
   * The consumer left the group on an error and stays out until `restart()` is called. `error` is retriable unless
   * it came from sluice's own code, and names an operator fix where waiting will not help.
   */
  onCrash(error: KafkaError): void;
  /**
   * Exactly-once delivery: where each assigned partition resumes, from the offsets stored with the data, given to
   * `resume` (possibly in several goes: a partition whose stored offsets are locked comes later). A partition is not
   * fetched until its position is given. Settles once every partition has one, or the assignment (`generation`) is over.
   */
  position?(assigned: Assignment[], generation: number, resume: (positions: PartitionPosition[]) => void): Promise<void>;
}

export class KafkaSource {
  readonly #options: ResolvedOptions;
  readonly #log: Logger;
  readonly #consumer: Consumer;
  /** Counts assignments (every rebalance, join and crash): a claim round belongs to one. */
  #generation = 0;
  /** The partitions this member owns, each with the epoch of its ownership (see the header). */
  #epochs = new Map<string, number>();
  /** The offset last committed (or, for a flush, asked to be) per partition, and the epoch it was in. */
  readonly #lastCommitted = new Map<string, { epoch: number; offset: bigint }>();
  /** What this member owned at its last join, for the sticky assigner's next round. */
  #owned: Ownership = { partitions: [], joinedAtMs: 0 };
  #fetching = true;
  /** Partitions waiting for their start position: not fetched, their records not handed over. */
  #gated = new Set<string>();
  /** Partitions the batcher paused (backpressure, retry): they stay paused when their gate opens. */
  #batcherPaused = new Set<string>();
  /** Batch handlers holding the fetch loop while every partition is paused: called when one may be fetched again. */
  readonly #heldFetches = new Set<() => void>();
  /** When the current holds end at the latest (see #holdWhileAllPaused); undefined once a partition resumes. */
  #holdDeadlineMs: number | undefined;
  /** disconnect() was called: the consumer must not come back. */
  #closed = false;
  /** consumer.run() was called: pause/resume/commit are only valid from then on. */
  #running = false;
  #handlers: SourceHandlers | undefined;
  #runConfig: ConsumerRunConfig | undefined;
  /** A consumer.run() that has not settled yet: it is connecting or joining the group. */
  #runInProgress: Promise<void> | undefined;
  /** Since when, and why, the consumer is out of the group (undefined while it is a member or joining first). */
  #down: { sinceMs: number; error: KafkaError } | undefined;
  /** Between REBALANCING and the GROUP_JOIN that ends it. */
  #rebalancing = false;
  /** When a broker last answered any of the consumer's requests. */
  #lastResponseMs = Date.now();
  /** This member's id in the group, as of its last join: a restart after a crash rejoins under it. */
  #memberId: string | undefined;

  /** The consumer's own client: nothing else connects through it. */
  readonly #kafka: KafkaClient;

  constructor(options: ResolvedOptions, log: Logger) {
    this.#options = options;
    this.#log = log.child({ component: 'kafka' });
    const kafka = createKafkaClient(options, options.kafka.clientId, this.#log, 'warn');
    this.#kafka = kafka;
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
      // for backpressure (see #holdWhileAllPaused): short, so that shutdown is quick.
      maxWaitTimeInMs: fetchMaxWaitMs,
      // sluice decides about every restart (see onCrash), kafkajs about none.
      retry: { ...kafkaRetry(options), restartOnFailure: async () => false },
      // Round-robin stays listed: a group whose members do not all offer the sticky assigner (a rolling upgrade)
      // agrees on it.
      partitionAssigners:
        options.kafka.assignor === 'sticky'
          ? [stickyAssigner(() => this.#owned), kafkajs.PartitionAssigners.roundRobin]
          : [kafkajs.PartitionAssigners.roundRobin],
    });
  }

  /**
   * Why Kafka counts as unreachable, if it does: the consumer is out of the group after an error, or no broker has
   * answered any request for longer than the session timeout (heartbeats go out every heartbeat interval even while
   * every partition is paused).
   */
  unreachable(nowMs: number): string | undefined {
    if (this.#down) {
      const { sinceMs, error } = this.#down;
      return `Kafka is unreachable: the consumer is out of the group since ${new Date(sinceMs).toISOString()} (${error.message}); it rejoins as soon as the brokers answer`;
    }
    const silentMs = nowMs - this.#lastResponseMs;
    // A JoinGroup is answered only once the rebalance completes (up to the rebalance timeout): no silence while joining.
    if (this.#running && this.#fetching && !this.#rebalancing && silentMs > this.#options.kafka.sessionTimeoutMs) {
      return `Kafka is unreachable: no broker has answered for ${Math.round(silentMs / 1000)} s`;
    }
    return undefined;
  }

  /** Whether records of a partition fetched under `epoch` still belong to this member. */
  isCurrent(topic: string, partition: number, epoch: number): boolean {
    return this.epochOf(topic, partition) === epoch;
  }

  /** The epoch of this member's ownership of a partition; undefined when it does not own it. */
  epochOf(topic: string, partition: number): number | undefined {
    return this.#epochs.get(partitionKey(topic, partition));
  }

  /** Whether no rebalance, join or crash happened since `generation`. */
  isCurrentAssignment(generation: number): boolean {
    return generation === this.#generation;
  }

  /**
   * Connects, subscribes and runs the consumer. A failure (the brokers unreachable) throws a KafkaError; calling
   * start again retries.
   */
  async start(topics: string[], handlers: SourceHandlers): Promise<void> {
    if (!this.#handlers) this.#listen(handlers);
    try {
      await this.#consumer.connect();
      for (const topic of topics) {
        await this.#consumer.subscribe({ topic, fromBeginning: this.#options.kafka.startFrom === 'earliest' });
      }
    } catch (error) {
      throw kafkaConsumerError(`connecting to Kafka (${this.#options.kafka.brokers.join(',')}) failed`, error, this.#options.kafka.groupId);
    }
    this.#running = true;
    this.#runConfig = {
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: rejoinWithMemberId(
        deliverFilteredBatches((payload) => this.#onBatch(payload, handlers)),
        () => this.#memberId,
      ),
    };
    await this.#run(this.#runConfig);
  }

  /** The consumer's events, listened to once. */
  #listen(handlers: SourceHandlers): void {
    this.#handlers = handlers;
    const { GROUP_JOIN, REBALANCING, CRASH, REQUEST } = this.#consumer.events;
    this.#consumer.on(REQUEST, () => {
      this.#lastResponseMs = Date.now();
    });
    // Exactly-once (positions from the data): what this member keeps through a rebalance keeps its epoch.
    const keepsThroughRebalance = handlers.position !== undefined;
    this.#consumer.on(REBALANCING, () => {
      this.#rebalancing = true;
      this.#generation++;
      if (!keepsThroughRebalance) this.#epochs.clear();
      this.#gated.clear();
      handlers.onRebalance([]);
    });
    this.#consumer.on(GROUP_JOIN, (event) => {
      const generation = ++this.#generation;
      this.#holdDeadlineMs = undefined; // a new assignment: a new episode of holds
      const assigned = Object.entries(event.payload.memberAssignment).map(([topic, partitions]) => ({ topic, partitions }));
      const epochs = new Map<string, number>();
      const kept: string[] = [];
      for (const { topic, partitions } of assigned) {
        for (const p of partitions) {
          const key = partitionKey(topic, p);
          const before = keepsThroughRebalance ? this.#epochs.get(key) : undefined;
          if (before !== undefined) kept.push(key);
          epochs.set(key, before ?? generation);
        }
      }
      this.#epochs = epochs;
      this.#owned = { partitions: assigned.flatMap(({ topic, partitions }) => partitions.map((partition) => ({ topic, partition }))), joinedAtMs: Date.now() };
      this.#memberId = event.payload.memberId;
      this.#log.info({ assigned, kept, generation, memberId: this.#memberId, protocol: event.payload.groupProtocol }, 'joined the group');
      this.#down = undefined;
      this.#rebalancing = false;
      this.#lastResponseMs = Date.now();
      handlers.onJoined();
      handlers.onRebalance(assigned);
      // A consumer run again after a crash starts unpaused: a stopped one must stay stopped, and what sluice paused
      // stays paused.
      if (!this.#fetching) this.#guard('pause', () => this.#consumer.pause(assigned.map(({ topic }) => ({ topic }))));
      else if (handlers.position) this.#gate(assigned, generation, handlers.position);
      else this.#pauseWhereSluicePaused(assigned);
    });
    this.#consumer.on(CRASH, (event) => {
      this.#releaseHeldFetches();
      this.#generation++;
      this.#epochs.clear();
      this.#gated.clear();
      const error = kafkaConsumerError('the Kafka consumer left the group', event.payload.error, this.#options.kafka.groupId);
      this.#down ??= { sinceMs: Date.now(), error };
      this.#down.error = error;
      handlers.onCrash(error);
    });
  }

  /**
   * Runs the consumer again after a crash: it connects, joins the group and fetches from the positions the new
   * assignment gives (exactly-once: the offsets stored with the data). A failure crashes it again, reported the same way.
   */
  async restart(): Promise<void> {
    if (this.#closed || !this.#runConfig) return;
    this.#log.info('the Kafka consumer rejoins the group');
    await this.#run(this.#runConfig);
  }

  /**
   * Holds newly assigned partitions until `position` says where they resume. kafkajs emits GROUP_JOIN before its
   * first fetch of the new assignment, so pausing here means nothing is fetched from the wrong place; a fetch that
   * slips through anyway is dropped in #onBatch, and the stored-offset check in the sink refuses a wrong start.
   */
  #gate(assigned: Assignment[], generation: number, position: NonNullable<SourceHandlers['position']>): void {
    for (const { topic, partitions } of assigned) for (const p of partitions) this.#gated.add(partitionKey(topic, p));
    this.#pauseWhereSluicePaused(assigned);
    const resume = (positions: PartitionPosition[]) => {
      if (!this.isCurrentAssignment(generation)) return;
      for (const { topic, partition, offset, fetchFrom, onlyForward } of positions) {
        const from = fetchFrom ?? offset;
        if (from !== undefined) this.#guard('seek', () => this.#consumer.seek({ topic, partition, offset: from }));
        const epoch = this.epochOf(topic, partition);
        // The group's committed offset follows, so that lag and autoscalers see where sluice really is.
        if (offset !== undefined && epoch !== undefined) void this.commit(topic, partition, offset, epoch, onlyForward);
        this.#gated.delete(partitionKey(topic, partition));
        this.#applyPause(topic, partition);
      }
      this.#log.info(
        { generation, positions: Object.fromEntries(positions.map((p) => [partitionKey(p.topic, p.partition), p.fetchFrom ?? p.offset])) },
        'assigned partitions resume from the offsets stored with the data',
      );
    };
    position(assigned, generation, resume).catch((error: unknown) =>
      this.#log.debug({ err: error, generation }, `positioning the assignment ended: ${errorMessage(error)}`),
    );
  }

  /** Moves the fetch position of a partition (exactly-once: back to the offsets stored with the data). */
  reposition(topic: string, partition: number, offset: string, epoch: number): void {
    // Not during a rebalance: kafkajs would keep the seek for a partition that moves; the claim after the rejoin
    // positions every partition anyway, from the batcher's position.
    if (!this.isCurrent(topic, partition, epoch) || !this.#running || this.#rebalancing) return;
    this.#guard('seek', () => this.#consumer.seek({ topic, partition, offset }));
  }

  async #onBatch(payload: EachBatchPayload, handlers: SourceHandlers): Promise<void> {
    const { batch } = payload;
    if (!this.#fetching || !payload.isRunning() || payload.isStale()) return;
    // Not resolved: the partition is fetched again from its position once its gate opens.
    const key = partitionKey(batch.topic, batch.partition);
    if (this.#gated.has(key)) return;
    const epoch = this.#epochs.get(key);
    if (epoch === undefined || this.#rebalancing) return; // not this member's (any more): not resolved either
    const records: SourceRecord[] = new Array(batch.messages.length);
    for (let i = 0; i < batch.messages.length; i++) {
      const m = batch.messages[i]!;
      const headers = recordHeaders(m.headers);
      records[i] = {
        topic: batch.topic,
        partition: batch.partition,
        offset: m.offset,
        key: m.key ?? null,
        value: m.value ?? null,
        timestamp: m.timestamp,
        headers,
        sizeBytes: (m.key?.length ?? 0) + (m.value?.length ?? 0) + recordHeaderBytes(headers),
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
    await this.#holdWhileAllPaused();
  }

  /**
   * With every assigned partition paused, kafkajs sleeps maxWaitTimeInMs before it looks at the pauses again, so a
   * partition the batcher resumes a moment later waits out the rest of that sleep: under backpressure, a draining
   * buffer spent much of its time there (with an 8 MiB cap, a third of the throughput). Instead, the batch handlers
   * that find every partition paused hold their fetcher's loop and let it go as soon as one partition may be fetched
   * again: that fetcher's next fetch asks for it at once. Holds share one deadline, that sleep's length from the
   * first, so the handlers of one fetch (kafkajs runs a few at a time) never hold it longer than kafkajs would have
   * slept, and a rebalance is not put off any longer either. (A partition led by another broker is fetched by that
   * broker's fetcher, which, if it is sleeping, still sleeps.)
   */
  async #holdWhileAllPaused(): Promise<void> {
    if (!this.#allPaused()) return;
    const now = Date.now();
    this.#holdDeadlineMs ??= now + fetchMaxWaitMs;
    const holdMs = this.#holdDeadlineMs - now;
    if (holdMs <= 0) return;
    await new Promise<void>((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.#heldFetches.delete(release);
        resolve();
      };
      const timer = setTimeout(release, holdMs);
      timer.unref();
      this.#heldFetches.add(release);
    });
  }

  #allPaused(): boolean {
    const { partitions } = this.#owned;
    if (this.#closed || !this.#fetching || partitions.length === 0 || this.#batcherPaused.size + this.#gated.size < partitions.length) return false;
    return partitions.every(({ topic, partition }) => this.#isPaused(partitionKey(topic, partition)));
  }

  /** A partition is fetched unless the batcher paused it or it waits for its position. */
  #isPaused(key: string): boolean {
    return this.#batcherPaused.has(key) || this.#gated.has(key);
  }

  #releaseHeldFetches(): void {
    this.#holdDeadlineMs = undefined;
    for (const release of [...this.#heldFetches]) release();
  }

  /**
   * Commits `nextOffset` for a partition while this member owns it under `epoch`; not during a rebalance (the broker
   * would refuse it: the claim after the rejoin commits where the stored offsets end). Failures are logged, not thrown.
   */
  async commit(topic: string, partition: number, nextOffset: string, epoch: number, onlyForward = false): Promise<boolean> {
    if (!this.isCurrent(topic, partition, epoch) || this.#rebalancing) {
      this.#log.debug({ topic, partition, nextOffset }, 'commit skipped: partition no longer owned, or the group is rebalancing');
      return false;
    }
    // A position read without a lock (a kept partition's) may be older than a flush of this member's that committed
    // meanwhile: it is not committed below what this ownership last committed.
    const key = partitionKey(topic, partition);
    const last = this.#lastCommitted.get(key);
    if (onlyForward && last?.epoch === epoch && BigInt(nextOffset) < last.offset) {
      this.#log.debug({ topic, partition, nextOffset, committed: last.offset.toString() }, 'commit skipped: the group is already past it');
      return false;
    }
    // Noted when asked (a flush's commit may still be on its way when a resume position is committed).
    if (!onlyForward) this.#lastCommitted.set(key, { epoch, offset: BigInt(nextOffset) });
    try {
      await this.#consumer.commitOffsets([{ topic, partition, offset: nextOffset }]);
      if (onlyForward) this.#lastCommitted.set(key, { epoch, offset: BigInt(nextOffset) });
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

  /**
   * At a join, pauses in kafkajs every assigned partition that sluice holds paused (see #isPaused). kafkajs keeps its
   * pauses through a rebalance, but a consumer run again after a crash starts with none. Without this, a partition
   * whose batch of the ended assignment was still being retried was fetched again at once, and its buffer grew past
   * the cap: the batcher pauses a partition for the cap only once no other reason holds it paused, so that pause
   * never reached kafkajs until the retry noticed it was out of date.
   */
  #pauseWhereSluicePaused(assigned: Assignment[]): void {
    if (!this.#fetching || !this.#running) return;
    const paused = assigned
      .map(({ topic, partitions }) => ({ topic, partitions: partitions.filter((p) => this.#isPaused(partitionKey(topic, p))) }))
      .filter(({ partitions }) => partitions.length > 0);
    if (paused.length > 0) this.#guard('pause', () => this.#consumer.pause(paused));
  }

  /** Tells kafkajs whether the partition is fetched (see #isPaused). */
  #applyPause(topic: string, partition: number): void {
    if (!this.#fetching || !this.#running) return;
    const paused = this.#isPaused(partitionKey(topic, partition));
    this.#guard(paused ? 'pause' : 'resume', () =>
      paused ? this.#consumer.pause([{ topic, partitions: [partition] }]) : this.#consumer.resume([{ topic, partitions: [partition] }]),
    );
    if (!paused) this.#releaseHeldFetches();
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
    this.#releaseHeldFetches();
    if (this.#running) this.#guard('pause', () => this.#consumer.pause(topics.map((topic) => ({ topic }))));
  }

  /**
   * consumer.run(), remembered until it settles. kafkajs' disconnect() cannot stop a run still connecting or joining
   * (its runner is not running yet, so stopping it does nothing, and the join then completes with nobody to leave
   * the group): disconnect() waits for it first.
   */
  async #run(config: ConsumerRunConfig): Promise<void> {
    const run = this.#consumer.run(config);
    this.#runInProgress = run;
    try {
      await run;
    } finally {
      if (this.#runInProgress === run) this.#runInProgress = undefined;
    }
  }

  /**
   * Leaves the group and closes connections. A run still joining is waited for (at most `joinWaitMs`), so that the
   * member it makes leaves the group too.
   */
  async disconnect(joinWaitMs = 5_000): Promise<void> {
    this.#closed = true;
    this.#releaseHeldFetches();
    this.#generation++;
    this.#epochs.clear();
    const run = this.#runInProgress;
    if (run) {
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, joinWaitMs)));
      await Promise.race([run.catch((error: unknown) => this.#log.debug({ err: error }, 'the run being joined failed')), waited]);
      clearTimeout(timer);
    }
    const leftOpen = await closeKafkaClient(this.#kafka, () => this.#consumer.disconnect());
    if (leftOpen > 0) this.#log.debug({ sockets: leftOpen }, 'closed connections the Kafka client left open after disconnecting');
  }
}
