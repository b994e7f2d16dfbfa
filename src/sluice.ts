import type { Logger } from 'pino';
import { Batcher, type BatcherStats } from './batcher/batcher.js';
import type { ResolvedOptions, SluiceOptions } from './config/options.js';
import { resolveOptions, type SettingSources } from './config/resolve-options.js';
import { KafkaSource } from './consumer/kafka-source.js';
import { ErrorCodes, KafkaError, ShutdownTimeoutError, SluiceError, errorMessage } from './errors.js';
import { SluiceEmitter } from './events.js';
import { Lifecycle, type LifecycleState } from './lifecycle/lifecycle.js';
import { createLogger, redactUrl } from './observability/logger.js';
import { Progress } from './observability/progress.js';
import { PostgresSink } from './sinks/postgres-sink.js';

export interface SluiceStatus {
  state: LifecycleState;
  error?: string;
  batching: BatcherStats;
  /** Records fetched but not yet flushed and committed, summed over partitions. */
  lag: number;
  /** `topic:partition` → next offset committed by this member. */
  committed: Record<string, string>;
  statements: number;
}

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
}

export interface SluiceDeps {
  logger?: Logger;
  /** Where each setting came from (environment variable, file key), so errors name what the user wrote. */
  settingSources?: SettingSources;
}

/** Builds a sluice pipeline. Options are validated here, once; a bad value throws a ConfigError naming it. */
export function createSluice(options: SluiceOptions, deps: SluiceDeps = {}): Sluice {
  const resolved = resolveOptions(options, deps.settingSources);
  return new SluicePipeline(resolved, deps.logger ?? createLogger(resolved.logLevel));
}

class SluicePipeline implements Sluice {
  readonly events = new SluiceEmitter();
  readonly done: Promise<void>;
  readonly #options: ResolvedOptions;
  readonly #log: Logger;
  readonly #lifecycle: Lifecycle;
  readonly #sink: PostgresSink;
  readonly #source: KafkaSource;
  readonly #batcher: Batcher;
  readonly #progress = new Progress();
  #settle!: { resolve: () => void; reject: (error: Error) => void };
  #stopping: Promise<void> | undefined;
  #statsTimer: NodeJS.Timeout | undefined;
  #lastStats = { at: Date.now(), flushed: 0 };

  constructor(options: ResolvedOptions, log: Logger) {
    this.#options = options;
    this.#log = log;
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // Callers that never await `done` must not see an unhandled rejection; `stop()` and `start()` report too.
    this.done.catch(() => undefined);
    this.#lifecycle = new Lifecycle(log, (from, to, error) => this.events.emit('state', { from, to, ...(error ? { error } : {}) }));
    this.#sink = new PostgresSink(options, log.child({ component: 'postgres' }));
    this.#source = new KafkaSource(options, log);
    this.#batcher = new Batcher({
      limits: { ...options.batching },
      sink: this.#sink,
      log: log.child({ component: 'batcher' }),
      emitter: this.events,
      isCurrent: (epoch) => this.#source.isCurrent(epoch),
      commit: async (topic, partition, offset, epoch) => {
        const committed = await this.#source.commit(topic, partition, offset, epoch);
        if (committed) {
          this.#progress.observeCommit(topic, partition, offset);
          this.events.emit('commit', { topic, partition, offset });
        }
        return committed;
      },
      pause: (topic, partition) => this.#source.pause(topic, partition),
      resume: (topic, partition) => this.#source.resume(topic, partition),
      // #fail settles every step itself and never rejects.
      onFatal: (error) => void this.#fail(error),
    });
    if (log.isLevelEnabled('debug')) {
      const batches = log.child({ component: 'batcher' });
      this.events.on('flush', (flush) => batches.debug(flush, 'flushed'));
    }
  }

  get state(): LifecycleState {
    return this.#lifecycle.state;
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
    };
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
    try {
      await this.#sink.start();
      await this.#source.start(this.#sink.topics, {
        onRecords: (topic, partition, records, epoch) => {
          if (records.length > 0) this.#progress.observeFetched(topic, partition, records[0]!.offset);
          this.#batcher.add(topic, partition, records, epoch);
        },
        onHighWatermark: (topic, partition, hw) => this.#progress.observeHighWatermark(topic, partition, hw),
        onRebalance: (assigned) => {
          this.#batcher.discardBuffers();
          if (assigned.length > 0) this.events.emit('rebalance', { assigned });
        },
        onCrash: (error, restarting) => {
          this.#batcher.discardBuffers();
          if (restarting) this.#log.warn({ err: error }, 'Kafka consumer crashed; it rejoins the group');
          else void this.#fail(new KafkaError(`Kafka consumer stopped: ${errorMessage(error)}`, { cause: error }));
        },
      });
    } catch (error) {
      // A stop() during start-up closes the consumer under start(); the stop decides the outcome then.
      if (this.#stopping) return;
      const failure = error instanceof Error ? error : new Error(String(error));
      await this.#fail(failure);
      throw failure;
    }
    if (this.#lifecycle.state !== 'starting') return; // a stop() or failure arrived meanwhile
    this.#lifecycle.transition('running');
    this.#statsTimer = setInterval(() => this.#logStats(), this.#options.statsIntervalMs);
    this.#statsTimer.unref();
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#drain();
    return this.#stopping;
  }

  async #drain(): Promise<void> {
    if (this.#lifecycle.isFinal()) return;
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
    }
    await this.#closeConnections();
    this.#logStats();
    if (this.#lifecycle.isFinal()) return; // a flush failed fatally during the drain
    if (failure) {
      this.#lifecycle.transition('failed', failure);
      this.#settle.reject(failure);
      throw failure;
    }
    this.#lifecycle.transition('stopped');
    this.#settle.resolve();
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
    await this.#source.disconnect().catch((error: unknown) => this.#log.warn({ err: error }, 'leaving the group failed'));
    await this.#sink.close().catch((error: unknown) => this.#log.warn({ err: error }, 'closing the PostgreSQL pool failed'));
  }

  #logStats(): void {
    const now = Date.now();
    const stats = this.#batcher.stats();
    const seconds = Math.max(0.001, (now - this.#lastStats.at) / 1000);
    const recordsPerSec = Math.round((stats.flushedRecords - this.#lastStats.flushed) / seconds);
    this.#lastStats = { at: now, flushed: stats.flushedRecords };
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
        ...memoryStats(),
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
