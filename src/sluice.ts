import type { Logger } from 'pino';
import { Batcher } from './batcher/batcher.js';
import type { BatcherStats, PartitionBatchStats } from './batcher/batcher-stats.js';
import { FailurePolicy, startRetrying, type Retrying } from './lifecycle/failure-policy.js';
import type { ResolvedOptions, SluiceOptions } from './config/options.js';
import { dlqTopicFor, resolveOptions, type SettingSources } from './config/resolve-options.js';
import { connectDlqProducer } from './consumer/dlq-producer.js';
import { KafkaSource, type PartitionPosition } from './consumer/kafka-source.js';
import { checkKafkaSecurity, kafkaSecurityWarnings } from './consumer/kafka-security.js';
import { DeadLetterQueue } from './dlq/dead-letter-queue.js';
import type { DeadLetteredRecord } from './dlq/dead-lettered-record.js';
import { FailureRateBreaker, type BreakerWindow } from './dlq/failure-rate-breaker.js';
import { backoffMs, sleep } from './lifecycle/backoff.js';
import { BreakerOpenError, ErrorCodes, KafkaError, ShutdownTimeoutError, SluiceError, errorMessage, isRetriable } from './errors.js';
import { SluiceEmitter } from './events.js';
import { HealthServer, type MetricsEndpoint, type Readiness } from './http/health-server.js';
import { Lifecycle, type LifecycleState } from './lifecycle/lifecycle.js';
import { createLogger, redactUrl } from './observability/logger.js';
import { FlushObserver } from './observability/flush-observer.js';
import { SluiceMetrics } from './observability/metrics.js';
import { Progress, type PartitionProgress } from './observability/progress.js';
import { Throughput } from './observability/throughput.js';
import { PostgresSink } from './sinks/postgres-sink.js';
import { partitionKey, type Assignment } from './record.js';
import { sluiceVersion } from './version.js';

export interface SluiceStatus {
  state: LifecycleState;
  error?: string;
  batching: BatcherStats;
  /** Records fetched but not yet flushed and committed, summed over partitions. */
  lag: number;
  /** `topic:partition` → next offset committed by this member. */
  committed: Record<string, string>;
  /** Queries sent to PostgreSQL, BEGIN, COMMIT and savepoints included. */
  statements: number;
  database: { available: boolean };
  dlq: { sentRecords: number; recent: DeadLetteredRecord[] };
  /** Per partition this member owns: what is buffered, where it is, lag, and what went wrong last. */
  partitions: PartitionStatus[];
  /** Records flushed per second over the last 10 s. */
  recordsPerSec: number;
  breaker: BreakerWindow & { open: boolean; maxDlqRatio: number; minRecords: number; windowMs: number };
  readiness: Readiness;
}

export type PartitionStatus = PartitionProgress & Partial<Omit<PartitionBatchStats, 'topic' | 'partition'>>;

export interface Sluice {
  /** Checks the routes against the database, joins the group and starts consuming. */
  start(): Promise<void>;
  /**
   * Stops fetching, flushes and commits what is buffered, leaves the group; bounded by `shutdownGraceMs`.
   * Idempotent: every call returns the same promise.
   */
  stop(): Promise<void>;
  /** Settles when sluice is `stopped` (resolves) or `failed` (rejects with the cause). */
  readonly done: Promise<void>;
  readonly events: SluiceEmitter;
  readonly state: LifecycleState;
  status(): SluiceStatus;
  /** Where the health endpoints listen, once started (undefined if disabled). */
  readonly httpAddress: { host: string; port: number } | undefined;
}

export interface SluiceDeps {
  logger?: Logger;
  /** Where each setting came from (environment variable, file key), so errors name what the user wrote. */
  settingSources?: SettingSources;
  /**
   * Serves GET /metrics on the HTTP port (the service passes its Prometheus exporter's handler, see
   * observability/telemetry.ts); without it /metrics answers 404.
   */
  metricsEndpoint?: MetricsEndpoint;
}

/** Builds a sluice pipeline. Options are validated here, once; a bad value throws a ConfigError naming it. */
export function createSluice(options: SluiceOptions, deps: SluiceDeps = {}): Sluice {
  const resolved = resolveOptions(options, deps.settingSources);
  checkKafkaSecurity(resolved);
  return new SluicePipeline(resolved, deps.logger ?? createLogger(resolved.logLevel), deps);
}

class SluicePipeline implements Sluice {
  readonly events = new SluiceEmitter((event, error) =>
    this.#log.error({ event, err: error }, `a '${event}' event listener failed: ${errorMessage(error)}; sluice goes on`),
  );
  readonly done: Promise<void>;
  readonly #options: ResolvedOptions;
  readonly #log: Logger;
  readonly #lifecycle: Lifecycle;
  readonly #sink: PostgresSink;
  readonly #source: KafkaSource;
  readonly #batcher: Batcher;
  readonly #progress = new Progress();
  readonly #throughput = new Throughput();
  readonly #metrics: SluiceMetrics;
  /** Ends the gauges' collection (at close). */
  #stopGauges: (() => void) | undefined;
  readonly #breaker: FailureRateBreaker;
  readonly #policy: FailurePolicy;
  readonly #health: HealthServer | undefined;
  #httpAddress: { host: string; port: number } | undefined;
  #dlq: DeadLetterQueue | undefined;
  /** Aborted when connections close: ends waits that would otherwise outlive them. */
  readonly #closing = new AbortController();
  #settle!: { resolve: () => void; reject: (error: Error) => void };
  #stopping: Promise<void> | undefined;
  #statsTimer: NodeJS.Timeout | undefined;
  /** The Kafka consumer is out of the group and waits to rejoin: its retry record and the pending restart. */
  #consumerRetrying: Retrying | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  /** Claims waiting for offsets rows another session holds, for /readyz. */
  readonly #claimsWaiting = new Set<Retrying>();
  /** A start-up step waiting for Kafka, for /readyz. */
  #startupRetrying: Retrying | undefined;

  constructor(options: ResolvedOptions, log: Logger, deps: SluiceDeps = {}) {
    this.#options = options;
    this.#log = log;
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // Callers that never await `done` must not see an unhandled rejection; `stop()` and `start()` report too.
    this.done.catch(() => undefined);
    this.#lifecycle = new Lifecycle(log, (from, to, error) => this.events.emit('state', { from, to, ...(error ? { error } : {}) }));
    this.#metrics = new SluiceMetrics(options.kafka.groupId);
    this.#sink = new PostgresSink(options, log.child({ component: 'postgres' }), this.#metrics);
    this.#policy = new FailurePolicy({ maxOperatorAttempts: options.dlq.maxAttempts, maxRetryingMs: options.readiness.maxRetryingMs });
    this.#source = new KafkaSource(options, log);
    this.#batcher = new Batcher({
      limits: { ...options.batching },
      sink: this.#sink,
      observer: new FlushObserver(this.#metrics),
      log: log.child({ component: 'batcher' }),
      emitter: this.events,
      isCurrent: (topic, partition, epoch) => this.#source.isCurrent(topic, partition, epoch),
      commit: (topic, partition, offset, epoch) => this.#source.commit(topic, partition, offset, epoch),
      pause: (topic, partition) => this.#source.pause(topic, partition),
      resume: (topic, partition) => this.#source.resume(topic, partition),
      exactlyOnce: options.delivery === 'exactly-once',
      policy: this.#policy,
      offsetsRow: { table: options.offsetsTable, groupId: options.kafka.groupId },
      // A rebalance reaches every member within a session timeout; twice that with refusals and none means none comes.
      claimRefusalLimitMs: 2 * options.kafka.sessionTimeoutMs,
      reposition: (topic, partition, offset, epoch) => this.#source.reposition(topic, partition, offset, epoch),
      afterDatabaseCommit: crashAfterDatabaseCommit(),
      admitDeadLetters: (records, poison) => {
        const refused = this.#breaker.admit(records, poison.length);
        if (!refused) return;
        const percent = (n: number) => `${(n * 100).toFixed(1)} %`;
        throw new BreakerOpenError(
          `the DLQ breaker opened: ${refused.deadLettered} of ${refused.records} records (${percent(refused.ratio)}) in the last ` +
            `${options.breaker.windowMs} ms would have gone to the DLQ, over breaker.maxDlqRatio=${options.breaker.maxDlqRatio}; ` +
            `the batch that would have taken it there was not sent and stays uncommitted (its first poison record: ${poison[0]!.error.message}). ` +
            'Consumption stopped: look at the poison records and their producer, then restart sluice',
        );
      },
      deadLetter: async (poison, attempts, acked) => {
        if (!this.#dlq) throw new SluiceError(ErrorCodes.lifecycle, 'the DLQ producer is not connected');
        await this.#dlq.send(poison, attempts, acked);
      },
      onFatal: (error) => this.#onSystemic(error),
    });
    this.#breaker = new FailureRateBreaker(options.breaker);
    // Batches that sent records to the DLQ were counted when the breaker admitted them (see admitDeadLetters).
    this.events.on('flush', (flush) => {
      if (flush.deadLettered === 0) this.#breaker.record(flush.records);
      this.#throughput.add(flush.records, Date.now());
    });
    this.#stopGauges = this.#metrics.observe({
      lag: () => this.#progress.partitions(),
      batching: () => this.#batcher.stats(),
      breaker: () => ({ open: this.#breaker.open, ratio: this.#breaker.window().ratio }),
    });
    this.#health = options.http.enabled
      ? new HealthServer(
          {
            alive: () => this.#lifecycle.state !== 'failed',
            readiness: () => this.#readiness(),
            ...(options.http.status === 'off' ? {} : { status: () => (options.http.status === 'summary' ? statusSummary(this.status()) : this.status()) }),
            ...(deps.metricsEndpoint ? { metrics: deps.metricsEndpoint } : {}),
          },
          log.child({ component: 'http' }),
        )
      : undefined;
    if (log.isLevelEnabled('debug')) {
      const batches = log.child({ component: 'batcher' });
      this.events.on('flush', (flush) => batches.debug(flush, 'flushed'));
    }
  }

  get state(): LifecycleState {
    return this.#lifecycle.state;
  }

  get httpAddress(): { host: string; port: number } | undefined {
    return this.#httpAddress;
  }

  /** Why sluice is not ready; error texts (which can quote record values) only with http.status=full. */
  #readiness(): Readiness {
    const reasons: string[] = [];
    const withErrors = this.#options.http.status === 'full';
    const state = this.#lifecycle.state;
    if (state === 'halted') reasons.push(`consumption stopped: ${withErrors ? (this.#lifecycle.error?.message ?? 'halted') : '(the error is in the logs)'}`);
    else if (state !== 'running') reasons.push(`sluice is ${state}`);
    if (this.#startupRetrying) {
      const { subject, attempts, lastError } = this.#startupRetrying;
      reasons.push(`Kafka is unreachable: ${subject} failed ${attempts} time(s)${withErrors ? `, last: ${errorMessage(lastError)}` : ''}`);
    }
    if (!this.#sink.available) reasons.push('PostgreSQL is unreachable; batches are retried until it is back');
    const kafka = this.#source.unreachable(Date.now());
    if (kafka && state === 'running') reasons.push(kafka);
    if (state === 'running') reasons.push(...this.#policy.unreadyReasons([...this.#batcher.retrying(), ...this.#claimsWaiting], Date.now(), withErrors));
    return { ready: reasons.length === 0, reasons };
  }

  status(): SluiceStatus {
    const error = this.#lifecycle.error;
    return {
      state: this.#lifecycle.state,
      ...(error ? { error: error.message } : {}),
      batching: this.#batcher.stats(),
      lag: this.#progress.lag(),
      committed: this.#progress.committedOffsets(),
      statements: this.#sink.counters.statements,
      database: { available: this.#sink.available },
      dlq: { sentRecords: this.#dlq?.sent ?? 0, recent: this.#dlq?.recent() ?? [] },
      partitions: this.#partitionStatus(),
      recordsPerSec: Math.round(this.#throughput.perSecond(Date.now())),
      breaker: { ...this.#breaker.window(), open: this.#breaker.open, ...this.#options.breaker },
      readiness: this.#readiness(),
    };
  }

  /** The partitions this member owns (as the last fetches saw them), joined with the batcher's view of each. */
  #partitionStatus(): PartitionStatus[] {
    const batching = new Map(this.#batcher.partitionStats(Date.now()).map((p) => [partitionKey(p.topic, p.partition), p]));
    return this.#progress
      .partitions()
      .map((p) => {
        const seen = batching.get(partitionKey(p.topic, p.partition));
        if (!seen) return p;
        const { topic: _topic, partition: _partition, ...held } = seen;
        return { ...p, ...held };
      })
      .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  async start(): Promise<void> {
    if (this.#lifecycle.state !== 'starting') {
      throw new SluiceError(ErrorCodes.lifecycle, `start() called in state ${this.#lifecycle.state}`);
    }
    this.#log.info(
      {
        brokers: this.#options.kafka.brokers,
        groupId: this.#options.kafka.groupId,
        database: redactUrl(this.#options.database.url),
        batching: this.#options.batching,
      },
      'starting',
    );
    for (const warning of kafkaSecurityWarnings(this.#options)) this.#log.warn({ kafka: 'security' }, warning);
    try {
      if (this.#health) {
        const { port, host } = this.#options.http;
        const address = await this.#health.listen(port, host).catch((error: unknown) => {
          throw new SluiceError(ErrorCodes.lifecycle, `cannot serve the health endpoints on http.port=${port} (SLUICE_HTTP_PORT), host ${host}: ${errorMessage(error)}`, { cause: error });
        });
        this.#httpAddress = { host: address.address, port: address.port };
        // A stop() meanwhile has already closed what was open; what this step opened is closed here.
        if (this.#startAborted()) {
          await this.#health.close();
          return;
        }
      }
      await this.#sink.start();
      const topics = this.#sink.topics.map((source) => ({ source, dlq: dlqTopicFor(this.#options.dlq.topic, source) }));
      const producer = await this.#untilConnected('connecting the DLQ producer', () => connectDlqProducer(this.#options, topics, this.#log));
      if (this.#startAborted()) {
        await producer.close().catch((error: unknown) => this.#log.warn({ err: error }, 'closing the DLQ producer failed'));
        return;
      }
      this.#dlq = new DeadLetterQueue(
        producer,
        {
          topicTemplate: this.#options.dlq.topic,
          groupId: this.#options.kafka.groupId,
          version: sluiceVersion,
          sendTimeoutMs: this.#options.database.statementTimeoutMs,
        },
        this.#log.child({ component: 'dlq' }),
        this.#metrics,
      );
      await this.#untilConnected('joining the consumer group', () => this.#source.start(this.#sink.topics, {
        onRange: (topic, partition, range, epoch) => {
          this.#progress.observeFetched(topic, partition, range.fromOffset);
          if (range.records.length > 0) this.#metrics.recordConsumed(topic, partition, range.records.length);
          this.#batcher.add(topic, partition, range, epoch);
        },
        onHighWatermark: (topic, partition, hw) => this.#progress.observeHighWatermark(topic, partition, hw),
        onCommitted: (topic, partition, offset) => {
          this.#progress.observeCommit(topic, partition, offset);
          this.events.emit('commit', { topic, partition, offset });
        },
        ...(this.#options.delivery === 'exactly-once' ? { position: (assigned, generation, resume) => this.#claimPositions(assigned, generation, resume) } : {}),
        onRebalance: (assigned) => {
          this.#batcher.discardStale();
          // Lag and /status cover the partitions this member owns now, and no others.
          this.#progress.retain(assigned);
          if (assigned.length > 0) this.events.emit('rebalance', { assigned });
        },
        onJoined: () => {
          this.#consumerRetrying = undefined;
        },
        onCrash: (error) => this.#onConsumerCrash(error),
      }));
    } catch (error) {
      // A stop() during start-up closes the consumer under start(); the stop decides the outcome then.
      if (this.#stopping) return;
      const failure = error instanceof Error ? error : new Error(String(error));
      await this.#fail(failure);
      throw failure;
    }
    if (this.#stopping) {
      // kafkajs finishes a join that was under way when the stop disconnected the consumer, and the consumer is
      // then in the group again: leave it once more, now that the join is over.
      await this.#source.disconnect().catch((error: unknown) => this.#log.warn({ err: error }, 'leaving the group failed'));
      return;
    }
    if (this.#lifecycle.state !== 'starting') return; // a halt or failure arrived meanwhile
    this.#lifecycle.transition('running');
    this.#statsTimer = setInterval(() => this.#logStats(), this.#options.statsIntervalMs);
    this.#statsTimer.unref();
  }

  /**
   * The Kafka consumer left the group on an error (the brokers unreachable, the coordinator gone): the failure policy
   * decides whether it rejoins after a backoff (bounded by kafka.retryBackoffMaxMs, so that consuming follows the
   * brokers back within about that long) or sluice halts (an error of sluice's own, or an operator fix not made).
   */
  #onConsumerCrash(error: KafkaError): void {
    this.#batcher.discardStale();
    // Disconnecting while kafkajs is still joining crashes that join; a stopping sluice expected as much.
    if (this.#stopping || this.#lifecycle.isFinal()) {
      this.#log.debug({ err: error }, 'Kafka consumer ended while stopping');
      return;
    }
    this.#consumerRetrying ??= startRetrying('the Kafka consumer');
    const decision = this.#policy.decide(error, this.#consumerRetrying, this.#options.kafka.retryBackoffMaxMs);
    if (decision.action === 'halt') {
      this.#halt(decision.error);
      return;
    }
    this.#log.warn(
      { err: error, attempt: this.#consumerRetrying.attempts, retryInMs: decision.delayMs },
      `${error.message}; it rejoins in ${decision.delayMs} ms`,
    );
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      if (this.#stopping || this.#lifecycle.isFinal()) return;
      this.#source.restart().catch((failure: unknown) => this.#onConsumerCrash(
        failure instanceof KafkaError ? failure : new KafkaError(`restarting the Kafka consumer failed: ${errorMessage(failure)}`, { cause: failure, retriable: true }),
      ));
    }, decision.delayMs);
  }

  /**
   * A start-up step that needs Kafka, retried while Kafka is unreachable (a broker restarting as the pod starts), as
   * the failure policy says; /readyz names the step and its error meanwhile. What retrying cannot fix fails start().
   */
  async #untilConnected<T>(step: string, connect: () => Promise<T>): Promise<T> {
    const retrying: Retrying = startRetrying(step);
    try {
      for (;;) {
        try {
          return await connect();
        } catch (error) {
          if (this.#startAborted()) throw error;
          const decision = this.#policy.decide(error, retrying, this.#options.kafka.retryBackoffMaxMs);
          if (decision.action === 'halt') throw decision.error;
          this.#startupRetrying = retrying;
          this.#log.warn({ err: error, attempt: retrying.attempts, retryInMs: decision.delayMs }, `${step} failed, will retry: ${errorMessage(error)}`);
          await sleep(decision.delayMs, this.#closing.signal);
        }
      }
    } finally {
      this.#startupRetrying = undefined;
    }
  }

  /** A stop() or a failure arrived while start() was waiting on a step. */
  #startAborted(): boolean {
    return this.#stopping !== undefined || this.#lifecycle.isFinal();
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#drain();
    return this.#stopping;
  }

  async #drain(): Promise<void> {
    if (this.#lifecycle.isFinal()) {
      // Stopping a sluice that has already failed says so, as `done` does.
      if (this.#lifecycle.state === 'failed') throw this.#lifecycle.error ?? new SluiceError(ErrorCodes.lifecycle, 'sluice failed');
      return;
    }
    const halted = this.#lifecycle.state === 'halted' ? this.#lifecycle.error : undefined;
    this.#lifecycle.transition('draining');
    const graceMs = this.#options.shutdownGraceMs;
    const deadline = new Promise<'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), graceMs);
      timer.unref();
    });
    this.#source.stopFetching(this.#sink.topics);
    const before = this.#batcher.stats();
    this.#log.info({ bufferedRecords: before.bufferedRecords }, 'draining: fetching stopped, flushing what is buffered');
    let failure: Error | undefined;
    const drained = this.#batcher.drain().then(() => 'drained' as const);
    if ((await Promise.race([drained, deadline])) === 'timeout') {
      failure = new ShutdownTimeoutError(graceMs);
      this.#batcher.abort(failure);
      // Statements still running would keep the pool from closing (and the process past its grace time).
      await this.#sink.cancelInFlight();
    }
    await this.#closeConnections();
    this.#logStats();
    if (this.#lifecycle.isFinal()) {
      // A flush failed fatally during the drain: stop() says so, as done does.
      if (this.#lifecycle.state === 'failed') throw this.#lifecycle.error ?? new SluiceError(ErrorCodes.lifecycle, 'sluice failed');
      return;
    }
    failure ??= halted;
    if (failure) {
      this.#lifecycle.transition('failed', failure);
      this.#settle.reject(failure);
      throw failure;
    }
    this.#lifecycle.transition('stopped');
    this.#settle.resolve();
  }

  /**
   * Exactly-once delivery: claims the newly assigned partitions in the offsets table (fencing their previous
   * owners) and hands each one's position to `resume` as soon as it is claimed, so that fetching starts there.
   * Retried as the failure policy says while the database is unreachable. A partition whose offsets row another
   * session holds (a member frozen inside its flush, until idleInTransactionTimeoutMs ends its transaction) is
   * claimed again shortly, without holding up the others.
   */
  async #claimPositions(assigned: Assignment[], generation: number, resume: (positions: PartitionPosition[]) => void): Promise<void> {
    const retrying: Retrying = startRetrying('claiming the assigned partitions');
    let pending = assigned;
    let seen = new Map<string, string>();
    // Partitions waiting for their offsets rows: /readyz names them once they have waited readiness.maxRetryingMs.
    const waiting: Retrying = startRetrying('claiming partitions');
    let warned = false;
    try {
      for (let busyRounds = 0; ; ) {
        if (!this.#source.isCurrentAssignment(generation) || this.#lifecycle.isFinal()) throw new SluiceError(ErrorCodes.lifecycle, 'the assignment ended before its partitions were claimed');
        let claimed;
        try {
          // Partitions kept through the rebalance, under the claim this member holds: kept as they are if still latest.
          const held = new Map<string, string>();
          for (const { topic, partitions } of pending) {
            for (const p of partitions) {
              const epoch = this.#source.epochOf(topic, p);
              const claim = epoch === undefined ? undefined : this.#batcher.heldClaim(topic, p, epoch);
              if (claim !== undefined) held.set(partitionKey(topic, p), claim);
            }
          }
          claimed = await this.#sink.claim(pending, () => this.#source.isCurrentAssignment(generation), seen, held);
        } catch (error) {
          const decision = this.#policy.decide(error, retrying);
          if (decision.action === 'halt') {
            this.#onSystemic(decision.error);
            throw error;
          }
          this.#log.warn({ err: error, attempt: retrying.attempts, retryInMs: decision.delayMs }, `claiming the assigned partitions failed, will retry: ${errorMessage(error)}`);
          // Ends at once when sluice closes, so that a retry never keeps a stopped process alive.
          await sleep(decision.delayMs, this.#closing.signal);
          continue;
        }
        if (!claimed || !this.#source.isCurrentAssignment(generation)) throw new SluiceError(ErrorCodes.lifecycle, 'the assignment ended while its partitions were claimed');
        // The batcher owns each partition's claim and position from here: it says where fetching resumes (the end
        // of a buffer kept through the rebalance, or where the stored offsets end).
        const positions: PartitionPosition[] = [];
        for (const { topic, partition, claim, nextOffset } of claimed.claims) {
          const epoch = this.#source.epochOf(topic, partition);
          if (epoch === undefined) continue;
          const { fetchFrom, held } = this.#batcher.claimed(topic, partition, epoch, claim, nextOffset);
          positions.push({ topic, partition, offset: nextOffset, fetchFrom, onlyForward: held });
        }
        if (positions.length > 0) resume(positions);
        if (claimed.taken.length > 0) {
          this.#log.warn(
            { taken: claimed.taken },
            'partitions waiting for their offsets rows were claimed by another member meanwhile: their assignment here is over, and they are left to it',
          );
        }
        if (claimed.busy.length === 0) return;
        pending = claimed.busy;
        seen = claimed.seen;
        const held = pending.map(({ topic, partitions }) => `${topic}[${partitions.join(',')}]`).join(', ');
        const message =
          `the offsets rows of ${held} in ${this.#options.offsetsTable} are held by another session; the other partitions go on, and these ` +
          `are claimed once they are free (a member frozen inside its flush holds them at most idleInTransactionTimeoutMs=${this.#options.database.idleInTransactionTimeoutMs} ` +
          'after its last statement; otherwise look in pg_locks and pg_stat_activity for the session holding them)';
        if (!this.#claimsWaiting.has(waiting)) {
          waiting.sinceMs = Date.now();
          this.#claimsWaiting.add(waiting);
        }
        waiting.subject = `claiming ${held}`;
        waiting.attempts++;
        waiting.lastError = message;
        // A previous owner's last flush holds its row for a moment in every rebalance: only a longer wait is news.
        if (!warned && Date.now() - waiting.sinceMs > 2_000) {
          warned = true;
          this.#log.warn({ busy: pending }, message);
        } else this.#log.debug({ busy: pending }, message);
        await sleep(backoffMs(busyRounds++, 50, 1_000), this.#closing.signal);
      }
    } finally {
      this.#claimsWaiting.delete(waiting);
    }
  }

  /** A flush failed in a way no retry fixes: halt while running, fail while draining. */
  #onSystemic(error: Error): void {
    const state = this.#lifecycle.state;
    if (state === 'starting' || state === 'running') this.#halt(error);
    else if (state === 'draining') void this.#fail(error); // #fail settles every step itself and never rejects
    else this.#log.debug({ err: error, state }, 'flush ended after consumption had stopped');
  }

  /**
   * Stops consuming and stays up, live but not ready: the batch that failed and everything after it stay
   * uncommitted, and a restart resumes from there once the cause is fixed. Nothing is dead-lettered for it.
   */
  #halt(error: Error): void {
    const state = this.#lifecycle.state;
    if (state !== 'starting' && state !== 'running') return;
    this.#lifecycle.transition('halted', error);
    this.#source.stopFetching(this.#sink.topics);
    this.#batcher.halt(error);
    this.#log.error(
      { err: error, committed: this.#progress.committedOffsets() },
      `consumption stopped: ${error.message}. Nothing past the failing batch is committed; restart sluice once the cause is fixed`,
    );
  }

  async #fail(error: Error): Promise<void> {
    if (this.#lifecycle.isFinal()) return;
    this.#lifecycle.transition('failed', error);
    this.#source.stopFetching(this.#sink.topics);
    this.#batcher.abort(error);
    await this.#closeConnections();
    this.#settle.reject(error);
  }

  /** Each step isolated: a failure to leave the group must not keep the pool open, and is reported. */
  async #closeConnections(): Promise<void> {
    clearInterval(this.#statsTimer);
    this.#stopGauges?.();
    clearTimeout(this.#restartTimer);
    this.#closing.abort(new SluiceError(ErrorCodes.lifecycle, 'sluice is closing'));
    await this.#source.disconnect().catch((error: unknown) => this.#log.warn({ err: error }, 'leaving the group failed'));
    await this.#sink.close().catch((error: unknown) => this.#log.warn({ err: error }, 'closing the PostgreSQL pool failed'));
    await this.#dlq?.close().catch((error: unknown) => this.#log.warn({ err: error }, 'closing the DLQ producer failed'));
    await this.#health?.close();
  }

  #logStats(): void {
    const now = Date.now();
    const stats = this.#batcher.stats();
    // The same figure as /status, over the stats interval (a minute at most).
    const recordsPerSec = Math.round(this.#throughput.perSecond(now, this.#options.statsIntervalMs));
    this.#log.info(
      {
        state: this.#lifecycle.state,
        consumed: stats.consumedRecords,
        flushed: stats.flushedRecords,
        batches: stats.batches,
        recordsPerSec,
        lag: this.#progress.lag(),
        buffered: stats.bufferedRecords,
        bufferedBytes: stats.bufferedBytes,
        pausedPartitions: stats.pausedPartitions,
        statements: this.#sink.counters.statements,
        deadLettered: stats.deadLetteredRecords,
        stale: stats.staleRecords,
        retryingPartitions: stats.retryingPartitions,
        databaseAvailable: this.#sink.available,
        breaker: { ...this.#breaker.window(), open: this.#breaker.open },
        ...memoryStats(),
        // Per partition this member owns, as /status has them.
        partitions: this.#partitionStatus(),
      },
      'progress',
    );
  }
}

/** Process memory for the progress line, in MiB: resident set, JavaScript heap, and Buffers outside it. */
function memoryStats(): { rssMiB: number; heapUsedMiB: number; buffersMiB: number } {
  const m = process.memoryUsage();
  const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
  return { rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), buffersMiB: mib(m.arrayBuffers) };
}

/**
 * Fault injection for the chaos test, and only when it sets SLUICE_TEST_CRASH_AFTER_DB_COMMIT=N: the process kills
 * itself with SIGKILL right after its Nth PostgreSQL commit, before the offset reaches Kafka.
 */
function crashAfterDatabaseCommit(): (() => void) | undefined {
  const after = Number(process.env.SLUICE_TEST_CRASH_AFTER_DB_COMMIT);
  if (!Number.isInteger(after) || after <= 0) return undefined;
  let commits = 0;
  return () => {
    if (++commits === after) process.kill(process.pid, 'SIGKILL');
  };
}

/**
 * The status document without texts that may quote record values (errors of the pipeline, of partitions, of the last
 * DLQ records): for http.status=summary, on a port others can reach.
 */
function statusSummary(status: SluiceStatus): SluiceStatus {
  const { error: _error, ...rest } = status;
  return {
    ...rest,
    ...(status.error !== undefined ? { error: '(hidden: http.status=summary)' } : {}),
    partitions: status.partitions.map(({ lastError, ...p }) => ({ ...p, ...(lastError ? { lastError: { message: '(hidden)', atMs: lastError.atMs } } : {}) })),
    dlq: { sentRecords: status.dlq.sentRecords, recent: status.dlq.recent.map((r) => ({ ...r, reason: '(hidden)' })) },
  };
}
