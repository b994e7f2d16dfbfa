import type { FlushObservation, FlushObserver } from '../observability/flush-observer.js';
import type { Logger } from 'pino';
import { ErrorCodes, SluiceError, errorMessage } from '../errors.js';
import type { SluiceEmitter } from '../events.js';
import type { FetchedRange, SourceRecord } from '../record.js';
import type { PoisonRecord, Sink } from '../sinks/sink.js';
import { backoffMs, sleep } from '../lifecycle/backoff.js';
import { startRetrying, type FailurePolicy, type Retrying } from '../lifecycle/failure-policy.js';
import type { BatcherStats, PartitionBatchStats } from './batcher-stats.js';
import { PartitionBuffer, type BatchLimits, type BufferedBatch, type FlushReason, type RangeRefusal } from './partition-buffer.js';

/**
 * Why a partition is not fetched: the buffer cap, a batch waiting to be retried, or its buffered tail shed while its
 * flush is stuck (fetched again once the flush ends).
 */
type PauseReason = 'backpressure' | 'retry' | 'shed';

/**
 * A partition whose batch has been in flight (or retrying) for longer than this cannot drain its buffer soon: far
 * longer than a healthy flush of a full batch takes, queueing for a pooled connection included.
 */
const stuckAfterMs = 5_000;

export interface BatcherLimits extends BatchLimits {
  maxBufferedBytes: number;
}

export interface BatcherDeps {
  limits: BatcherLimits;
  sink: Sink;
  /** Traces and metrics of each flush. */
  observer: FlushObserver;
  log: Logger;
  emitter: SluiceEmitter;
  /** Whether records of the partition fetched under `epoch` still belong to this member. */
  isCurrent(topic: string, partition: number, epoch: number): boolean;
  /** Commits `nextOffset` for the partition to the group, if `epoch` is still current. */
  commit(topic: string, partition: number, nextOffset: string, epoch: number): Promise<boolean>;
  pause(topic: string, partition: number): void;
  resume(topic: string, partition: number): void;
  /**
   * Exactly-once: offsets are stored with the data, a batch is written only under this member's latest claim and
   * only from where the stored offsets end. At-least-once: offsets live in the Kafka group alone.
   */
  exactlyOnce: boolean;
  /** Exactly-once: the offsets table and the group's rows in it, for messages that name a row. */
  offsetsRow?: { table: string; groupId: string };
  /**
   * Exactly-once: how long flushes may be refused because another member holds the claim, with no rebalance taking
   * the partition from this member, before sluice halts (the offsets row was edited or deleted by hand).
   */
  claimRefusalLimitMs?: number;
  /** Fetch the partition again from `offset`: where the covered offsets (and, exactly-once, the stored ones) end. */
  reposition(topic: string, partition: number, offset: string, epoch: number): void;
  /** Called right after each batch's rows commit, before its offset goes to Kafka (fault injection in tests). */
  afterDatabaseCommit?: (() => void) | undefined;
  /**
   * Asked before a batch's poison records go to the DLQ: these, from a batch of `records` not yet counted (0 when
   * already counted). Throws (not retriable) to refuse: nothing is sent, the batch stays uncommitted, and the flush
   * fails.
   */
  admitDeadLetters(records: number, poison: PoisonRecord[]): void;
  /** Decides, for every failed attempt at a batch, whether to retry (after how long) or halt. */
  policy: FailurePolicy;
  /**
   * Sends a batch's poison records to the DLQ; resolves once the broker acknowledged them, throws otherwise. `acked`
   * hears of each part the broker acknowledged, as soon as it does.
   */
  deadLetter(poison: PoisonRecord[], attempts: number, acked: (poison: PoisonRecord[]) => void): Promise<void>;
  /** A flush failed in a way retrying cannot fix; the batch stays unwritten and uncommitted. */
  onFatal(error: Error): void;
}

/** How the batcher keys its partition workers. */
const workerId = (topic: string, partition: number) => `${topic}\u0000${partition}`;

class PartitionWorker {
  readonly buffer = new PartitionBuffer();
  /** The running flush loop; at most one per partition, across rebalances, so writes never reorder. */
  flight: Promise<void> | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Epoch of the records in the buffer. */
  epoch = -1;
  /** Exactly-once delivery: this member's claim on the partition, made in `epoch`; undefined until made. */
  claim: string | undefined;
  /** When a flush was first refused for another member's claim, in this epoch, with none written since. */
  claimRefusedSince: number | undefined;
  /** The batch in flight failed and waits to be tried again: since when, how often, and why. */
  retrying: Retrying | undefined;
  /** Why fetching is paused for this partition; it resumes when no reason is left. */
  readonly pausedFor = new Set<PauseReason>();
  /**
   * The batch in flight: its bytes, since when, where it ends (where the buffer starts again if its tail is shed),
   * and the epoch it was fetched under (one of an earlier assignment says nothing of the buffer's).
   */
  inFlight: { bytes: number; sinceMs: number; fromOffset: string; toOffset: string; epoch: number } | undefined;
  /** Buffered plus in flight: what backpressure counts for this partition. */
  get heldBytes(): number {
    return this.buffer.bytes + (this.inFlight?.bytes ?? 0);
  }
  /**
   * Fetched ranges or batches refused in a row because they did not continue where the partition's covered (or
   * stored) offsets end. A seek can be overtaken by a fetch or two made before it; more mean Kafka cannot serve
   * that position at all.
   */
  repositions = 0;
  /**
   * Offset commits of this partition, chained so they reach the broker in order. The next flush does not wait
   * for them: a commit only records progress the database already holds.
   */
  commits: Promise<unknown> = Promise.resolve();
  /** Where the last batch written ended (its rows committed): the next offset to write. */
  lastFlushedOffset: string | undefined;
  /** The last flush failure, kept after the partition recovers: for /status. */
  lastError: { message: string; atMs: number } | undefined;
  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}
}

/**
 * Per-partition micro-batching: records are buffered per partition and flushed when a batch reaches
 * `maxBatchRecords`, `maxBatchBytes`, or `lingerMs` after its oldest record arrived. One flush is in flight per
 * partition (so its writes keep offset order) while fetching goes on; partitions flush in parallel up to the
 * sink's pool. A batch that fails transiently stays at the head and is retried, with backoff, before anything
 * after it, and its partition stops fetching meanwhile; its offset is committed only once the sink has committed
 * the rows. Poison records go to the DLQ before the rows commit, so their offsets are done with the batch's.
 *
 * This is the one owner of the rule "a partition is written only by its current owner, from where the last batch
 * ended": a partition's buffer is void once its epoch is over (a rebalance), a batch carries the claim made in its
 * epoch, and batches cover the fetched ranges without gaps or overlaps (PartitionBuffer). Under exactly-once the
 * sink checks the same in PostgreSQL, against the offsets stored with the data, which also fences other members.
 */
export class Batcher {
  readonly #deps: BatcherDeps;
  readonly #workers = new Map<string, PartitionWorker>();
  readonly #abort = new AbortController();
  #totalBytes = 0;
  /** A look at paused partitions once flushes in flight may have become stuck (see #applyBackpressure). */
  #recheck: NodeJS.Timeout | undefined;
  #draining = false;
  #failed = false;
  #consumed = 0;
  #flushed = 0;
  #deadLettered = 0;
  #stale = 0;
  #batches = 0;

  constructor(deps: BatcherDeps) {
    this.#deps = deps;
  }

  /**
   * Exactly-once delivery: this member claimed the partition in `epoch`; its batches start at `nextOffset`, where the
   * offsets stored with the data end (undefined: the group never wrote it, and the first fetch decides). Returns
   * where fetching resumes, and whether the claim was the one this member already held (then `nextOffset` was read
   * without a lock, and may lag behind this member's own flushes).
   *
   * A partition kept through a rebalance (same epoch) keeps its buffer, and its batch in flight, when they continue
   * exactly where the stored offsets end: nobody wrote it in between, so its records are still the next to write, and
   * fetching goes on from the buffer's end. Otherwise the buffer starts again at `nextOffset`.
   */
  claimed(topic: string, partition: number, epoch: number, claim: string, nextOffset: string | undefined): { fetchFrom: string | undefined; held: boolean } {
    const worker = this.#worker(topic, partition);
    if (worker.epoch > epoch) return { fetchFrom: undefined, held: false }; // a claim of an assignment that is already over
    // The claim this member held is still the latest (held through the rebalance): nobody wrote the partition since,
    // and what this member buffered continues what it wrote, wherever its own flushes have got to.
    const held = worker.epoch === epoch && worker.claim !== undefined && worker.claim === claim;
    const continues =
      held ||
      (worker.epoch === epoch &&
        nextOffset !== undefined &&
        (worker.buffer.start === nextOffset || (worker.inFlight?.epoch === epoch && worker.inFlight.fromOffset === nextOffset)));
    if (!continues) this.#totalBytes -= worker.buffer.reset(nextOffset);
    worker.epoch = epoch;
    worker.claim = claim;
    worker.claimRefusedSince = undefined;
    worker.repositions = 0;
    return { fetchFrom: continues ? (worker.buffer.position ?? nextOffset) : nextOffset, held };
  }

  /** The claim this member holds on a partition under `epoch`, if it made one: for keeping it through a rebalance. */
  heldClaim(topic: string, partition: number, epoch: number): string | undefined {
    const worker = this.#workers.get(workerId(topic, partition));
    return worker?.epoch === epoch ? worker.claim : undefined;
  }

  /** Buffers one fetched range of a partition. */
  add(topic: string, partition: number, range: FetchedRange, epoch: number): void {
    if (this.#draining || this.#failed) return;
    const worker = this.#worker(topic, partition);
    if (worker.epoch !== epoch) {
      this.#totalBytes -= worker.buffer.reset();
      worker.epoch = epoch;
      worker.claim = undefined;
    }
    const before = worker.buffer.count;
    const taken = this.#deps.exactlyOnce ? worker.buffer.append(range, Date.now()) : this.#appendAtLeastOnce(worker, range);
    if (typeof taken !== 'number') {
      this.#refuseRange(worker, range, epoch, taken);
      return;
    }
    if (range.records.length > 0) worker.repositions = 0;
    this.#totalBytes += taken;
    this.#consumed += worker.buffer.count - before;
    this.#schedule(worker);
    this.#applyBackpressure(worker);
  }

  /**
   * At-least-once delivery follows Kafka's own fetch position, as any Kafka consumer does: a range ahead of the
   * covered offsets (Kafka reset the position forward: records gone to retention, or startFrom=latest after an
   * offset out of range) is taken from where the covered offsets end, and one inside them (fetched again) is dropped
   * with a warning.
   * Nothing is sought, so no seek can outlive a rebalance and move a later assignment's start.
   */
  #appendAtLeastOnce(worker: PartitionWorker, range: FetchedRange): number {
    const { topic, partition } = worker;
    const taken = worker.buffer.append(range, Date.now());
    if (typeof taken === 'number') return taken;
    if (taken.refused === 'behind') {
      // Fetched again from before the covered end: what lies below it was read already. A reset below it (a log
      // truncated by an unclean leader election) shows here too; such records are not read again.
      this.#deps.log.warn(
        { topic, partition, expectedOffset: taken.expectedOffset, fromOffset: range.fromOffset, toOffset: range.toOffset },
        `${topic}[${partition}]: Kafka served offsets ${range.fromOffset}–${range.toOffset}, below ${taken.expectedOffset} where sluice's position is; they are not read again`,
      );
      return 0;
    }
    this.#deps.log.warn(
      { topic, partition, expectedOffset: taken.expectedOffset, fromOffset: range.fromOffset },
      `${topic}[${partition}]: Kafka moved the fetch position from ${taken.expectedOffset} to ${range.fromOffset} (its offset reset: ` +
        'records gone to retention, or the position was out of range); the records in between are not read',
    );
    const rebased = worker.buffer.append({ ...range, fromOffset: taken.expectedOffset }, Date.now());
    return typeof rebased === 'number' ? rebased : 0;
  }

  /**
   * A fetched range that does not continue the partition's covered offsets is not taken: fetching moves back to
   * where they end. A range from before a seek is expected now and then; one refused range after another means
   * Kafka cannot serve that position, and sluice halts rather than skip or repeat records.
   */
  #refuseRange(worker: PartitionWorker, range: FetchedRange, epoch: number, refusal: RangeRefusal): void {
    const { topic, partition } = worker;
    this.#deps.log.debug(
      { topic, partition, fromOffset: range.fromOffset, toOffset: range.toOffset, records: range.records.length, ...refusal },
      'fetched range refused: it does not continue the covered offsets',
    );
    const halt = this.#reposition(worker, refusal.expectedOffset, range.fromOffset, refusal.refused === 'ahead', epoch);
    if (halt) {
      this.#failed = true;
      this.#deps.onFatal(halt);
    }
  }

  /**
   * Fetching moves to `offset`, where the partition's covered or stored offsets end, after Kafka served it from
   * `servedFrom`. Too many in a row: answers the error to halt with, naming both offsets.
   */
  #reposition(worker: PartitionWorker, offset: string, servedFrom: string, ahead: boolean, epoch: number): SluiceError | undefined {
    const { topic, partition } = worker;
    if (++worker.repositions > 5) {
      const where = this.#deps.exactlyOnce ? 'the offsets stored with the data end' : "sluice's position is";
      const cause = ahead
        ? 'the records in between are gone from Kafka (retention?)'
        : 'the stored offset is past the end of the partition (was the topic deleted and created again?)';
      const fix = this.#deps.exactlyOnce ? "set or delete the partition's row in the offsets table" : "reset the group's offsets";
      return new SluiceError(
        ErrorCodes.offsets,
        `${topic}[${partition}]: ${where} at ${offset}, but Kafka serves the partition from ${servedFrom}: ${cause}. Check, then ${fix} and restart`,
      );
    }
    this.#deps.reposition(topic, partition, offset, epoch);
    return undefined;
  }

  /**
   * After a rebalance or a crash, the buffers of partitions whose epoch ended are dropped: their records were never
   * committed, so whoever owns the partition now reads them again from the committed offset. Their flushes in flight
   * finish, but roll back (isCurrent is false). Partitions kept through the rebalance keep theirs.
   */
  discardStale(): void {
    for (const worker of this.#workers.values()) {
      if (this.#deps.isCurrent(worker.topic, worker.partition, worker.epoch)) continue;
      clearTimeout(worker.timer);
      worker.timer = undefined;
      this.#totalBytes -= worker.buffer.reset();
      worker.claim = undefined;
      this.#unpause(worker, 'backpressure');
    }
  }

  /**
   * Stops flushing for good (a systemic error, or the breaker opened): buffers are dropped uncommitted, retry loops
   * end, and flushes already in the database finish and commit. Fetching is the caller's to stop.
   */
  halt(reason: Error): void {
    this.#failed = true;
    this.abort(reason);
    for (const worker of this.#workers.values()) {
      this.#totalBytes -= worker.buffer.reset();
    }
  }

  /** Flushes everything buffered and waits for it; called with fetching stopped. */
  async drain(): Promise<void> {
    this.#draining = true;
    for (;;) {
      if (this.#abort.signal.aborted) break;
      const flights: Promise<void>[] = [];
      for (const worker of this.#workers.values()) {
        clearTimeout(worker.timer);
        worker.timer = undefined;
        if (!worker.flight && worker.buffer.hasPending && !this.#failed) this.#startFlight(worker);
        if (worker.flight) flights.push(worker.flight);
      }
      if (flights.length === 0) break;
      await Promise.all(flights);
    }
    await Promise.all([...this.#workers.values()].map((worker) => worker.commits));
  }

  /** Stops retry loops at once (the shutdown grace time is over). */
  abort(reason: Error): void {
    this.#abort.abort(reason);
    for (const worker of this.#workers.values()) clearTimeout(worker.timer);
  }

  /** Partitions whose batch failed and waits to be tried again. */
  retrying(): Retrying[] {
    return [...this.#workers.values()].flatMap((worker) => (worker.retrying ? [{ ...worker.retrying }] : []));
  }

  stats(): BatcherStats {
    let bufferedRecords = 0;
    let pausedPartitions = 0;
    let retryingPartitions = 0;
    for (const worker of this.#workers.values()) {
      bufferedRecords += worker.buffer.count;
      if (worker.pausedFor.size > 0) pausedPartitions++;
      if (worker.pausedFor.has('retry')) retryingPartitions++;
    }
    return {
      consumedRecords: this.#consumed,
      flushedRecords: this.#flushed,
      deadLetteredRecords: this.#deadLettered,
      staleRecords: this.#stale,
      retryingPartitions,
      batches: this.#batches,
      bufferedRecords,
      bufferedBytes: this.#totalBytes,
      pausedPartitions,
    };
  }

  /** Per partition this batcher has seen: what it holds, where it is, and what went wrong last. */
  partitionStats(nowMs: number): PartitionBatchStats[] {
    return [...this.#workers.values()].map((worker) => {
      const oldest = worker.buffer.oldestArrivalMs;
      return {
        topic: worker.topic,
        partition: worker.partition,
        bufferedRecords: worker.buffer.count,
        bufferedBytes: worker.heldBytes,
        ...(oldest !== undefined ? { oldestBufferedMs: nowMs - oldest } : {}),
        ...(worker.lastFlushedOffset !== undefined ? { lastFlushedOffset: worker.lastFlushedOffset } : {}),
        paused: [...worker.pausedFor],
        ...(worker.retrying ? { retrying: { sinceMs: worker.retrying.sinceMs, attempts: worker.retrying.attempts } } : {}),
        ...(worker.lastError ? { lastError: { ...worker.lastError } } : {}),
      };
    });
  }

  #worker(topic: string, partition: number): PartitionWorker {
    const id = workerId(topic, partition);
    let worker = this.#workers.get(id);
    if (!worker) {
      worker = new PartitionWorker(topic, partition);
      this.#workers.set(id, worker);
    }
    return worker;
  }

  #schedule(worker: PartitionWorker): void {
    if (worker.flight || this.#failed || this.#draining) return;
    const now = Date.now();
    if (worker.buffer.dueReason(now, this.#deps.limits)) {
      this.#startFlight(worker);
      return;
    }
    const wait = worker.buffer.msUntilLinger(now, this.#deps.limits);
    if (wait !== undefined && !worker.timer) {
      worker.timer = setTimeout(() => {
        worker.timer = undefined;
        this.#schedule(worker);
      }, wait);
    }
  }

  #startFlight(worker: PartitionWorker): void {
    clearTimeout(worker.timer);
    worker.timer = undefined;
    worker.flight = this.#flushWhileDue(worker)
      .catch((error: unknown) => {
        // After abort() (the shutdown grace time is over) a flush ends in an error by design: it is not a failure.
        if (this.#abort.signal.aborted) {
          this.#failed = true; // nothing flushes after an abort: drain() must not start this partition again
          this.#deps.log.debug({ err: error, topic: worker.topic, partition: worker.partition }, 'flush ended by the abort');
          return;
        }
        this.#failed = true;
        this.#deps.onFatal(error instanceof Error ? error : new Error(String(error)));
      })
      .finally(() => {
        worker.flight = undefined;
        this.#schedule(worker);
      });
  }

  async #flushWhileDue(worker: PartitionWorker): Promise<void> {
    for (;;) {
      if (this.#failed || this.#abort.signal.aborted) return;
      const reason: FlushReason | undefined = this.#draining
        ? worker.buffer.hasPending
          ? 'drain'
          : undefined
        : worker.buffer.dueReason(Date.now(), this.#deps.limits);
      if (!reason) return;
      const epoch = worker.epoch;
      const cut = worker.buffer.take(this.#deps.limits);
      worker.inFlight = { bytes: cut.bytes, sinceMs: Date.now(), fromOffset: cut.fromOffset, toOffset: cut.toOffset, epoch };
      try {
        const { topic, partition } = worker;
        const observed = { topic, partition, records: cut.records, fromOffset: cut.fromOffset, toOffset: cut.toOffset, bytes: cut.bytes, reason };
        await this.#deps.observer.observe(observed, (observation) => this.#flush(worker, cut, epoch, reason, observation));
      } finally {
        worker.inFlight = undefined;
        this.#totalBytes -= cut.bytes;
        this.#unpause(worker, 'shed');
        this.#maybeResume();
      }
    }
  }

  async #flush(worker: PartitionWorker, batch: BufferedBatch, epoch: number, reason: FlushReason, observation: FlushObservation) {
    const { topic, partition } = worker;
    const { records, fromOffset, toOffset, oldestArrivalMs } = batch;
    const signal = this.#abort.signal;
    const waitedMs = Date.now() - oldestArrivalMs;
    /** Records of this batch the DLQ has acknowledged: later attempts leave them out. */
    const excluded = new Set<SourceRecord>();
    /** Poison records the breaker has admitted, and whether the batch's records are counted in its window. */
    const admitted = new Set<SourceRecord>();
    let counted = false;
    const deadLetter = async (poison: PoisonRecord[], attempts: number) => {
      const fresh = poison.filter((p) => !admitted.has(p.record));
      if (fresh.length > 0) {
        this.#deps.admitDeadLetters(counted ? 0 : records.length, fresh);
        counted = true;
        for (const p of fresh) admitted.add(p.record);
      }
      // Each chunk the broker acknowledges is left out of later attempts at once; a failed send leaves the rest to
      // the next attempt, which finds them again (through the sink's check that this member still holds the claim).
      await this.#deps.deadLetter(poison, attempts, (acked) => {
        for (const p of acked) excluded.add(p.record);
      });
    };
    try {
      for (let attempt = 0; ; attempt++) {
        if (!this.#deps.isCurrent(topic, partition, epoch)) return; // revoked: the new owner reads these again
        // The claim made in this batch's epoch (claimed again after a rebalance that kept the partition): a batch of
        // an older epoch has none and is refused.
        const claim = worker.epoch === epoch ? worker.claim : undefined;
        const startedAt = performance.now();
        let result;
        try {
          result = await this.#deps.sink.write(
            { topic, partition, records, fromOffset, toOffset, epoch, ...(this.#deps.exactlyOnce ? { claim } : {}) },
            {
              isCurrent: () => this.#deps.isCurrent(topic, partition, epoch),
              signal,
              excluded,
              deadLetter: (poison) => deadLetter(poison, attempt + 1),
            },
          );
        } catch (error) {
          if (signal.aborted) throw error;
          worker.lastError = { message: errorMessage(error), atMs: Date.now() };
          worker.retrying ??= startRetrying(`${topic}[${partition}]`);
          const decision = this.#deps.policy.decide(error, worker.retrying);
          if (decision.action === 'halt') throw decision.error;
          const delayMs = decision.delayMs;
          // Nothing more is fetched for a partition whose batch cannot be written yet.
          this.#pause(worker, 'retry');
          this.#deps.log.warn(
            { topic, partition, records: records.length, attempt: attempt + 1, retryInMs: delayMs, err: error },
            `flush failed, will retry: ${errorMessage(error)}`,
          );
          await sleep(delayMs, signal);
          continue;
        }
        if (result.fenced) {
          if (worker.epoch !== epoch) {
            // The assignment this batch was fetched under is over: whatever the reason, the batch is simply void.
            this.#deps.log.debug({ topic, partition, fromOffset, ...result.fenced }, 'batch of an earlier assignment refused');
            return;
          }
          if (result.fenced.reason === 'position') {
            this.#onPositionRefused(worker, batch, epoch, result.fenced.nextOffset);
            return;
          }
          // Another member's claim: the rebalance that ends this member's assignment is on its way (then isCurrent
          // is false and the loop ends). Until it comes, or the limit halts sluice, the batch waits like one that
          // failed transiently. A draining member leaves it at once: its records are not this member's to write.
          if (this.#draining) return;
          const untilLimitMs = this.#onClaimRefused(worker, batch, result.fenced.storedClaim);
          this.#pause(worker, 'retry');
          await sleep(Math.min(backoffMs(attempt), untilLimitMs), signal);
          continue;
        }
        if (!result.committed) return;
        this.#deps.afterDatabaseCommit?.();
        worker.repositions = 0;
        worker.claimRefusedSince = undefined;
        worker.lastFlushedOffset = toOffset;
        this.#flushed += records.length;
        this.#deadLettered += excluded.size;
        this.#stale += result.stale;
        this.#batches++;
        observation.committed(
          { written: result.upserted + result.deleted, skipped: result.skipped, stale: result.stale, deadLettered: excluded.size, attempts: attempt + 1 },
          Date.now(),
        );
        this.#deps.emitter.emit('flush', {
          topic,
          partition,
          records: records.length,
          fromOffset,
          toOffset,
          reason,
          waitedMs,
          durationMs: Math.round(performance.now() - startedAt),
          upserted: result.upserted,
          deleted: result.deleted,
          skipped: result.skipped,
          stale: result.stale,
          deadLettered: excluded.size,
          attempts: attempt + 1,
        });
        // The end of the covered range, not the last record + 1: offsets past the last record that hold none (a
        // transaction's control record) are done too, so a transactional topic's lag reaches 0.
        worker.commits = worker.commits
          .then(() => observation.settle(() => this.#deps.commit(topic, partition, toOffset, epoch)))
          .catch((error: unknown) => {
            // The rows are committed in PostgreSQL; a lost offset commit only means a replay, which upserts absorb.
            this.#deps.log.warn({ topic, partition, nextOffset: toOffset, err: error }, `offset commit failed: ${errorMessage(error)}`);
          });
        return;
      }
    } finally {
      worker.retrying = undefined;
      this.#unpause(worker, 'retry');
    }
  }

  /**
   * Exactly-once delivery refused a batch because it does not start where the offsets stored with the data end (they
   * were changed under this member): the buffer starts again there, and fetching moves there.
   */
  #onPositionRefused(worker: PartitionWorker, batch: BufferedBatch, epoch: number, storedNextOffset: string): void {
    const { topic, partition } = worker;
    this.#deps.log.warn(
      { topic, partition, fromOffset: batch.fromOffset, storedNextOffset },
      'batch refused: it does not start where the offsets stored with the data end; fetching from there',
    );
    this.#totalBytes -= worker.buffer.reset(storedNextOffset);
    const halt = this.#reposition(worker, storedNextOffset, batch.fromOffset, BigInt(batch.fromOffset) > BigInt(storedNextOffset), epoch);
    if (halt) throw halt;
  }

  /**
   * A flush refused because this member's claim is not the latest. Normally a rebalance follows at once and ends this
   * member's assignment (the records are the new owner's). If none follows within the limit, no member can be
   * writing the partition under a claim it knows: the offsets row was edited or deleted by hand, or a claim from an
   * assignment that was already over committed last. Waiting would stall the partition for ever; sluice halts.
   * Answers the milliseconds left before the limit; throws once it has passed.
   */
  #onClaimRefused(worker: PartitionWorker, batch: BufferedBatch, storedClaim: string | undefined): number {
    const { topic, partition } = worker;
    const now = Date.now();
    const limitMs = this.#deps.claimRefusalLimitMs ?? Infinity;
    if (worker.claimRefusedSince === undefined) {
      worker.claimRefusedSince = now;
      this.#deps.log.warn(
        { topic, partition, fromOffset: batch.fromOffset, claim: worker.claim, storedClaim },
        'batch refused: another member has claimed the partition since; its records are left to that member',
      );
    }
    // Answers how long until the limit, so that the next attempt comes no later (and at least 100 ms from now).
    if (now - worker.claimRefusedSince <= limitMs) return Math.max(100, worker.claimRefusedSince + limitMs - now + 1);
    const where = this.#deps.offsetsRow;
    const row = where ? `its row in ${where.table} (group_id ${where.groupId}, topic ${topic}, partition ${partition})` : 'its offsets row';
    const found =
      storedClaim === undefined
        ? `${row} is gone`
        : `${row} holds claim ${storedClaim} where this member's is ${worker.claim ?? 'none'}`;
    throw new SluiceError(
      ErrorCodes.offsets,
      `${topic}[${partition}]: flushes refused for ${now - worker.claimRefusedSince} ms with no rebalance following: ${found}. ` +
        'Was the row edited or deleted by hand, or does another deployment use the same group id? Check the row and the ' +
        'members of the group, then restart sluice (it claims the partition again)',
    );
  }

  #pause(worker: PartitionWorker, why: PauseReason): void {
    if (worker.pausedFor.has(why)) return;
    worker.pausedFor.add(why);
    if (worker.pausedFor.size === 1) this.#deps.pause(worker.topic, worker.partition);
  }

  #unpause(worker: PartitionWorker, why: PauseReason): void {
    if (!worker.pausedFor.delete(why)) return;
    if (worker.pausedFor.size === 0) this.#deps.resume(worker.topic, worker.partition);
  }

  /**
   * The cap is accounted per partition, so that partitions that cannot flush (a row lock, a retry) never starve the
   * others:
   * - the adding partition stops fetching once it holds half of maxBufferedBytes, or once what flowing partitions
   *   hold is over the cap;
   * - under exactly-once delivery, a partition whose batch has been in flight or retrying for over 5 s is stuck: what
   *   it holds does not count against the others, and once the total is over the cap it sheds its buffered tail (only
   *   the batch in flight stays), fetched again once its flush ends. So memory stays within maxBufferedBytes plus one
   *   batch per stuck partition. At-least-once follows Kafka's own fetch position and never seeks, so it cannot shed:
   *   there the cap holds for every partition, and two partitions stuck at half the cap each pause the rest. (An equal share among the partitions holding any was measured too: it paused busy
   * partitions so often that sluice moved ~15 % fewer records/s.)
   */
  #applyBackpressure(adding: PartitionWorker): void {
    const cap = this.#deps.limits.maxBufferedBytes;
    const now = Date.now();
    if (this.#deps.exactlyOnce && this.#totalBytes > cap) this.#shedStuck(now);
    const held = adding.heldBytes;
    if (held < cap / 2 && (this.#totalBytes <= cap || this.#flowingBytes(now) <= cap)) return;
    if (adding.pausedFor.has('backpressure')) return;
    this.#pause(adding, 'backpressure');
    this.#deps.log.debug({ topic: adding.topic, partition: adding.partition, heldBytes: held, bufferedBytes: this.#totalBytes }, 'paused: buffer cap reached');
    this.#armRecheck();
  }

  /**
   * While a partition is paused for the cap, flushes in flight may become stuck (and stop counting) with no event to
   * say so: look again every second until nothing is paused for the cap.
   */
  #armRecheck(): void {
    if (this.#recheck) return;
    this.#recheck = setTimeout(() => {
      this.#recheck = undefined;
      this.#maybeResume();
      if (!this.#failed && [...this.#workers.values()].some((w) => w.pausedFor.has('backpressure'))) this.#armRecheck();
    }, 1_000);
    this.#recheck.unref();
  }

  /** Exactly-once only: at-least-once cannot shed, so what a stuck partition holds stays within the cap. */
  #isStuck(worker: PartitionWorker, now: number): boolean {
    return this.#deps.exactlyOnce && worker.inFlight !== undefined && now - worker.inFlight.sinceMs > stuckAfterMs;
  }

  /** Bytes held by partitions that are not stuck: what the cap limits. */
  #flowingBytes(now: number): number {
    let stuck = 0;
    for (const worker of this.#workers.values()) if (this.#isStuck(worker, now)) stuck += worker.heldBytes;
    return this.#totalBytes - stuck;
  }

  /** Exactly-once: stuck partitions drop what they buffered past their batch in flight, largest first, until under the cap. */
  #shedStuck(now: number): void {
    // Only where the batch in flight and the buffer belong to the same claimed assignment does the buffer continue
    // from the batch's end: after a rebalance the buffer starts where the new claim says, whatever the old flush does.
    const stuck = [...this.#workers.values()]
      .filter((w) => this.#isStuck(w, now) && w.buffer.bytes > 0 && w.inFlight!.epoch === w.epoch && w.claim !== undefined)
      .sort((a, b) => b.buffer.bytes - a.buffer.bytes);
    for (const worker of stuck) {
      if (this.#totalBytes <= this.#deps.limits.maxBufferedBytes) return;
      const offset = worker.inFlight!.toOffset;
      const shed = worker.buffer.reset(offset);
      this.#totalBytes -= shed;
      this.#pause(worker, 'shed');
      this.#deps.reposition(worker.topic, worker.partition, offset, worker.epoch);
      this.#deps.log.debug(
        { topic: worker.topic, partition: worker.partition, shedBytes: shed, fetchFrom: offset },
        'buffer shed: the partition\'s flush is stuck; what it buffered past the batch in flight is fetched again once the flush ends',
      );
    }
  }

  /**
   * A paused partition fetches again once it holds a quarter of the cap or less and what flowing partitions hold is
   * under the cap, so that pause and resume do not flap at the boundary.
   */
  #maybeResume(): void {
    const cap = this.#deps.limits.maxBufferedBytes;
    if (this.#totalBytes >= cap && this.#flowingBytes(Date.now()) >= cap) return;
    const resumeAt = cap / 4;
    for (const worker of this.#workers.values()) {
      if (worker.pausedFor.has('backpressure') && worker.heldBytes <= resumeAt) this.#unpause(worker, 'backpressure');
    }
  }
}
