import pg from 'pg';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import type { ResolvedRoute } from '../config/route-options.js';
import { originalRecord, type RecordDecoder } from '../formats/record-decoder.js';
import { routeDecoder } from '../formats/route-decoder.js';
import { SchemaRegistryClient } from '../formats/schema-registry.js';
import { PoisonRecordError, SchemaError, SinkError, SluiceError, errorMessage } from '../errors.js';
import { Attr } from '../observability/semconv.js';
import type { SluiceMetrics } from '../observability/metrics.js';
import { observeStatement } from '../observability/statement-observer.js';
import { markFailed, withSpan } from '../observability/tracing.js';
import { backoffMs } from '../lifecycle/backoff.js';
import { classifyPgError } from './classify-pg-error.js';
import { partitionKey, type Assignment, type SourceRecord } from '../record.js';
import { isolatePoison } from './isolate-poison.js';
import { OffsetStore, type FenceRefusal, type PartitionClaim } from './offset-store.js';
import { RoutePlan, type PlannedColumn, type PlannedStatement, type RoutePlanInput } from './route-plan.js';
import type { Batch, ClaimRound, ClaimsSeen, PoisonRecord, Sink, WriteContext, WriteResult } from './sink.js';
import { createLandingTable, describeTable, tableExists, type TableShape } from './table-catalog.js';

/** What the sink sent to PostgreSQL, counted for the progress line and for tests. */
export interface SinkCounters {
  transactions: number;
  /** Every query sent, BEGIN, COMMIT and savepoints included. */
  statements: number;
  rolledBack: number;
}

type WriteCounts = Pick<WriteResult, 'upserted' | 'deleted' | 'skipped' | 'stale'>;

/**
 * Every route of the topic prepared over the same records. A record that any route rejects is poison for all of
 * them (a record is written by every route or by none), so the routes are prepared again without it.
 */
function prepareAll(plans: RoutePlan[], records: readonly SourceRecord[]): { statements: PlannedStatement[]; counts: WriteCounts; poison: PoisonRecord[] } {
  let prepared = plans.map((plan) => plan.prepare(records));
  const poison: PoisonRecord[] = [];
  const seen = new Set<SourceRecord>();
  for (const rejected of prepared.flatMap((p) => p.rejected)) {
    if (seen.has(rejected.record)) continue;
    seen.add(rejected.record);
    poison.push(rejected);
  }
  // Rejection depends on the record alone, so the second preparation rejects nothing more.
  if (poison.length > 0 && plans.length > 1) prepared = plans.map((plan) => plan.prepare(records.filter((r) => !seen.has(r))));
  const counts: WriteCounts = { upserted: 0, deleted: 0, skipped: 0, stale: 0 };
  for (const p of prepared) addCounts(counts, { ...p, stale: 0 });
  return { statements: prepared.flatMap((p) => p.statements), counts, poison };
}

function addCounts(into: WriteCounts, from: WriteCounts): void {
  into.upserted += from.upserted;
  into.deleted += from.deleted;
  into.skipped += from.skipped;
  into.stale += from.stale;
}

function withoutPoison(records: readonly SourceRecord[], poison: readonly PoisonRecord[]): SourceRecord[] {
  const out = new Set(poison.map((p) => p.record));
  return records.filter((r) => !out.has(r));
}

function sortByOffset(poison: PoisonRecord[]): PoisonRecord[] {
  return poison.sort((a, b) => (BigInt(a.record.offset) < BigInt(b.record.offset) ? -1 : 1));
}

/** One route as `sluice check` reports it. */
export interface RouteCheck {
  topic: string;
  table: string;
  mode: string;
  key: string[];
  /** The table columns the route writes. */
  columns: string[];
}

/** What `sluice check` found in PostgreSQL. */
export interface SinkCheck {
  version: string;
  /** Tables sluice would create at start (the offsets table, the landing table). */
  created: string[];
  routes: RouteCheck[];
}

/**
 * Writes each batch in one transaction: per route, a DELETE for tombstones and one INSERT … ON CONFLICT for the
 * rest, each a named prepared statement with a fixed parameter list.
 */
export class PostgresSink implements Sink {
  readonly #options: ResolvedOptions;
  readonly #log: Logger;
  readonly #metrics: SluiceMetrics | undefined;
  readonly #pool: pg.Pool;
  readonly #plans = new Map<string, RoutePlan[]>();
  /** Topics whose values are decoded before their routes read them (every format but plain JSON): their decoder. */
  readonly #decoders = new Map<string, RecordDecoder>();
  readonly counters: SinkCounters = { transactions: 0, statements: 0, rolledBack: 0 };
  /** Connections checked out by a flush or a claim: what cancelInFlight cancels. */
  readonly #inUse = new Set<pg.PoolClient>();
  /**
   * False from a failure to reach the database until the next successful commit, claim or probe: while it is false,
   * the database is probed, so that an idle pipeline does not report it unreachable after it is back.
   */
  #available = true;
  #probe: NodeJS.Timeout | undefined;
  #closed = false;
  /** Exactly-once delivery: offsets stored with the data. */
  readonly #offsets: OffsetStore | undefined;

  constructor(options: ResolvedOptions, log: Logger, metrics?: SluiceMetrics) {
    this.#options = options;
    this.#log = log;
    this.#metrics = metrics;
    this.#pool = new pg.Pool({
      connectionString: options.database.url,
      max: options.database.poolSize,
      statement_timeout: options.database.statementTimeoutMs,
      // A frozen member's transaction (its statement done, the client stopped) ends after this, and its locks with
      // it: the member that takes the partition over waits on them in its claim no longer than that.
      idle_in_transaction_session_timeout: options.database.idleInTransactionTimeoutMs,
      application_name: `sluice ${options.kafka.groupId}`,
      connectionTimeoutMillis: 10_000,
    });
    this.#offsets = options.delivery === 'exactly-once' ? new OffsetStore(options.offsetsTable, options.kafka.groupId) : undefined;
    const registry = options.schemaRegistry ? new SchemaRegistryClient(options.schemaRegistry) : undefined;
    for (const route of options.routes) {
      // Config checks that every route of a topic reads it in one format and envelope: the first one's decoder.
      if (this.#decoders.has(route.topic)) continue;
      const decoder = routeDecoder(route, registry, options.validation);
      if (decoder) this.#decoders.set(route.topic, decoder);
    }
    // A checked-out client whose connection dies between two queries (while a flush waits on the DLQ, say) emits
    // 'error' with no pool listener attached; unhandled, that would crash the process. Its next query then fails
    // with a connection error, which the flush classifies as transient and retries.
    this.#pool.on('connect', (client) =>
      client.on('error', (error) => this.#log.debug({ err: error }, 'PostgreSQL connection failed while checked out')),
    );
    // An idle client's error (server restart, network drop) is emitted on the pool; unhandled it would crash the
    // process. The next checkout gets a fresh connection, so logging is the whole handling.
    this.#pool.on('error', (error) => this.#log.warn({ err: error }, 'idle PostgreSQL connection failed; it will be replaced'));
  }

  /** Whether the database answered the last time sluice needed it. */
  get available(): boolean {
    return this.#available;
  }

  /** Topics that have at least one route. */
  get topics(): string[] {
    return [...this.#plans.keys()];
  }

  async start(): Promise<void> {
    const client = await this.#connect();
    try {
      await this.#prepare(client);
    } catch (error) {
      if (error instanceof SchemaError) throw error;
      throw classifyPgError(error, 'checking the routes against the database');
    } finally {
      client.release();
    }
  }

  /**
   * What `start` would do, in a transaction rolled back at the end: nothing is created. Answers the database's
   * version, the tables sluice would create, and each route's table, key and columns; a route that does not match
   * its table throws the SchemaError `start` would.
   */
  async check(): Promise<SinkCheck> {
    const client = await this.#connect();
    try {
      const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
      const missing = async (table: string) => !(await tableExists(client, table));
      const created = [
        ...(this.#offsets && (await missing(this.#options.offsetsTable)) ? [this.#options.offsetsTable] : []),
        ...(this.#options.landing && (await missing(this.#options.landing.table)) ? [this.#options.landing.table] : []),
      ];
      await client.query('BEGIN');
      try {
        return { version, created, routes: await this.#prepare(client) };
      } finally {
        await client.query('ROLLBACK');
      }
    } catch (error) {
      if (error instanceof SchemaError) throw error;
      throw classifyPgError(error, 'checking the routes against the database');
    } finally {
      client.release();
    }
  }

  /** Creates the tables sluice owns if missing, and plans every route against its table. */
  async #prepare(client: pg.PoolClient): Promise<RouteCheck[]> {
    await this.#offsets?.ensureTable(client);
    const routes = [...this.#options.routes];
    if (this.#options.landing) {
      await createLandingTable(client, this.#options.landing.table);
      for (const topic of this.#options.landing.topics) routes.push(landingRoute(topic, this.#options.landing.table));
    }
    // In a UTF-8 database equal text is equal bytes; in another, converting from UTF-8 can map two to one.
    const encoding = (await client.query<{ server_encoding: string }>('SHOW server_encoding')).rows[0]?.server_encoding;
    const textEqualityIsBytes = encoding === 'UTF8' || encoding === 'SQL_ASCII';
    const checked: RouteCheck[] = [];
    let id = 0;
    for (const route of routes) {
      const shape = await describeTable(client, route.table);
      const plan = new RoutePlan({ ...planInput(route, shape, this.#options.validation), textEqualityIsBytes }, `sluice-r${id++}`);
      const list = this.#plans.get(route.topic) ?? [];
      list.push(plan);
      this.#plans.set(route.topic, list);
      checked.push({ topic: route.topic, table: route.table, mode: route.mode, key: route.key, columns: plan.columnNames });
      this.#log.info({ topic: route.topic, table: route.table }, 'route ready');
    }
    return checked;
  }

  /**
   * Claims the assigned partitions, topic by topic, waiting on no lock: answers the claims made and the partitions
   * whose offsets row another session holds (`busy`, to be claimed again shortly). Answers undefined, claiming no
   * further, once `isCurrent` says the assignment is over (a claim made for an assignment that has ended would fence
   * its new owner).
   */
  async claim(assigned: Assignment[], isCurrent: () => boolean = () => true, seen: ClaimsSeen = new Map(), held: ClaimsSeen = new Map()): Promise<ClaimRound | undefined> {
    if (!this.#offsets) return { claims: [], busy: [], taken: [], seen: new Map() };
    const client = await this.#connect();
    this.#inUse.add(client);
    try {
      const round: ClaimRound = { claims: [], busy: [], taken: [], seen: new Map() };
      for (const { topic, partitions } of assigned) {
        if (!isCurrent()) return undefined;
        if (partitions.length === 0) continue;
        const seenHere = new Map<number, string>();
        const heldHere = new Map<number, string>();
        for (const p of partitions) {
          const claim = seen.get(partitionKey(topic, p));
          if (claim !== undefined) seenHere.set(p, claim);
          const own = held.get(partitionKey(topic, p));
          if (own !== undefined) heldHere.set(p, own);
        }
        const claimed = await this.#offsets.claim(client, topic, partitions, seenHere, heldHere);
        round.claims.push(...claimed.claims);
        if (claimed.busy.size > 0) round.busy.push({ topic, partitions: [...claimed.busy.keys()] });
        if (claimed.taken.length > 0) round.taken.push({ topic, partitions: claimed.taken });
        for (const [p, claim] of claimed.busy) if (claim !== undefined) round.seen.set(partitionKey(topic, p), claim);
      }
      this.#available = true;
      return round;
    } catch (error) {
      throw this.#failed(classifyPgError(error, `claiming partitions in ${this.#options.offsetsTable}`));
    } finally {
      this.#inUse.delete(client);
      client.release();
    }
  }

  /** Writes a batch in one transaction (the flush's `process` span, when there is one, is the active span). */
  write(batch: Batch, context: WriteContext): Promise<WriteResult> {
    return this.#write(batch, context);
  }

  async #write(batch: Batch, context: WriteContext): Promise<WriteResult> {
    const routeTopic = batch.routeTopic ?? batch.topic;
    // A batch that only moves the offsets (records filtered out, control records) needs no route.
    const plans = this.#plans.get(routeTopic) ?? (batch.records.length === 0 ? [] : undefined);
    if (!plans) throw new SinkError(`no route for topic ${routeTopic}`, { retriable: false });
    const what = `writing ${batch.records.length} records of ${batch.topic}[${batch.partition}] into ${plans.map((p) => p.table).join(', ')}`;
    let records = context.excluded.size > 0 ? batch.records.filter((r) => !context.excluded.has(r)) : batch.records;
    // Decoding and preparing first keeps the transaction short and finds what JavaScript can see is poison before any
    // connection is taken. A registry that cannot be reached throws here (retriable): nothing is dead-lettered.
    const decoded = await this.#decoders.get(routeTopic)?.decode(records);
    if (decoded) records = decoded.records;
    let prepared = prepareAll(plans, records);
    if (decoded && decoded.poison.length > 0) prepared.poison.unshift(...decoded.poison);
    const result: WriteResult = { committed: false, ...prepared.counts, deadLettered: 0 };
    if (this.#offsets && batch.claim === undefined) return { ...result, fenced: { reason: 'claimed' } };
    if (prepared.statements.length === 0 && prepared.poison.length === 0 && !this.#offsets) {
      // Nothing for the database: tombstones under `ignore`.
      return { ...result, committed: context.isCurrent() };
    }
    // Poison goes to the DLQ with no transaction open: no row lock, and no offsets-row lock (which the next owner's
    // claim would wait on in a rebalance), is ever held while Kafka answers; nor, here, a pool connection.
    if (prepared.poison.length > 0) {
      const fenced = await this.#deadLetterUnlessFenced(undefined, batch, prepared.poison, context);
      if (fenced) return { ...result, fenced };
      result.deadLettered += prepared.poison.length;
      records = withoutPoison(records, prepared.poison);
      if (prepared.statements.length === 0 && !this.#offsets) return { ...result, committed: context.isCurrent() };
    }
    const client = await this.#connect();
    let broken = false;
    let immediate = false;
    this.#inUse.add(client);
    try {
      for (;;) {
        context.signal.throwIfAborted();
        let fenced = await this.#begin(client, batch);
        if (fenced) return await this.#refused(client, result, fenced);
        Object.assign(result, prepared.counts);
        let failure = await this.#run(client, prepared.statements, what, result, immediate);
        if (!failure) {
          if (!context.isCurrent()) {
            await this.#query(client, 'ROLLBACK');
            this.counters.rolledBack++;
            return result;
          }
          failure = await this.#commit(client, what, immediate);
          if (!failure) break;
          // A deferred constraint broken at COMMIT names no record: do it again with every constraint immediate.
          immediate = true;
          continue;
        }
        // Some row of the batch is poison: find it under savepoints, roll everything back, send it to the DLQ with no
        // transaction open, and write the rest in a new transaction, once.
        await this.#query(client, 'ROLLBACK');
        this.counters.rolledBack++;
        fenced = await this.#begin(client, batch);
        if (fenced) return await this.#refused(client, result, fenced);
        const isolated = await withSpan(
          'isolate poison',
          { attributes: { [Attr.dbSystem]: 'postgresql', [Attr.dbCollection]: plans.map((p) => p.table).join(','), [Attr.batchMessageCount]: records.length } },
          async (span) => {
            const statementsBefore = this.counters.statements;
            const found = await this.#isolate(client, plans, records, failure!, what, immediate);
            span.setAttributes({ [Attr.isolated]: found.length, [Attr.statements]: this.counters.statements - statementsBefore });
            // The first poison record's error: its code and SQLSTATE say why the batch failed.
            if (found.length > 0) markFailed(span, found[0]!.error);
            return found;
          },
        );
        await this.#query(client, 'ROLLBACK');
        this.counters.rolledBack++;
        if (isolated.length === 0) {
          // The whole batch failed but no record alone does (the data changed meanwhile?): try the batch again.
          throw new SinkError(`${what}: the batch failed (${errorMessage(failure.cause)}), but no record of it alone does; retrying`, {
            retriable: true,
            cause: failure,
          });
        }
        const fencedNow = await this.#deadLetterUnlessFenced(client, batch, isolated, context);
        if (fencedNow) return { ...result, fenced: fencedNow };
        result.deadLettered += isolated.length;
        records = withoutPoison(records, isolated);
        prepared = prepareAll(plans, records);
        Object.assign(result, prepared.counts);
      }
      this.counters.transactions++;
      this.#available = true;
      return { ...result, committed: true };
    } catch (error) {
      // The transaction is void either way. A connection that cannot even roll back is gone: it is destroyed below
      // rather than returned to the pool. One that rolled back is healthy and goes back.
      await this.#query(client, 'ROLLBACK').then(
        () => this.counters.rolledBack++,
        (rollbackError: unknown) => {
          broken = true;
          this.#log.debug({ err: rollbackError }, 'rollback after a failed flush also failed');
        },
      );
      if (error instanceof SluiceError) throw error;
      throw this.#failed(classifyPgError(error, what));
    } finally {
      this.#inUse.delete(client);
      client.release(broken);
    }
  }

  /**
   * Opens the batch's transaction, with every constraint immediate. With exactly-once delivery its next statement
   * moves the stored offsets past the batch, which also locks them: it answers why not if this member's claim or
   * the position is stale.
   */
  async #begin(client: pg.PoolClient, batch: Batch): Promise<FenceRefusal | undefined> {
    await this.#query(client, 'BEGIN');
    if (!this.#offsets) return undefined;
    return this.#offsets.advance((config) => this.#query(client, config), {
      topic: batch.topic,
      partition: batch.partition,
      claim: batch.claim!,
      fromOffset: batch.fromOffset,
      toOffset: batch.toOffset,
    });
  }

  /**
   * Sends poison records to the DLQ, unless (exactly-once) this member no longer holds the partition or the batch no
   * longer starts where the stored offsets end: then it answers why, and sends nothing. No transaction is open. The
   * check runs on `client` when the flush holds one (no second checkout, which a pool of one could never give), on
   * a connection of its own otherwise, given back before the send.
   */
  async #deadLetterUnlessFenced(
    client: pg.PoolClient | undefined,
    batch: Batch,
    poison: PoisonRecord[],
    context: WriteContext,
  ): Promise<FenceRefusal | undefined> {
    const offsets = this.#offsets;
    if (offsets) {
      const at = { topic: batch.topic, partition: batch.partition, claim: batch.claim!, fromOffset: batch.fromOffset };
      let fenced: FenceRefusal | undefined;
      if (client) fenced = await offsets.check((config) => this.#query(client, config), at);
      else {
        const own = await this.#connect();
        try {
          fenced = await offsets.check((config) => this.#query(own, config), at);
        } catch (error) {
          throw this.#failed(classifyPgError(error, `checking the claim on ${batch.topic}[${batch.partition}]`));
        } finally {
          own.release();
        }
      }
      if (fenced) return fenced;
    }
    // The records as they were fetched: a decoded value goes to the DLQ in its wire format, as it came.
    await context.deadLetter(sortByOffset(poison.map((p) => ({ ...p, record: originalRecord(p.record) }))));
    return undefined;
  }

  /**
   * COMMITs; resolves a row-level failure of a deferred constraint (the transaction is then over) unless the
   * constraints were immediate already, throws any other.
   */
  async #commit(client: pg.PoolClient, what: string, immediate: boolean): Promise<SinkError | undefined> {
    try {
      await this.#query(client, 'COMMIT');
      return undefined;
    } catch (error) {
      const failure = classifyPgError(error, what);
      if (failure.rowLevel && !immediate) return failure;
      throw this.#failed(failure);
    }
  }

  async #refused(client: pg.PoolClient, result: WriteResult, fenced: FenceRefusal): Promise<WriteResult> {
    await this.#query(client, 'ROLLBACK');
    this.counters.rolledBack++;
    return { ...result, committed: false, fenced };
  }

  /**
   * Runs statements; resolves a row-level failure (the transaction is then aborted), throws any other. A statement
   * that reduces in PostgreSQL answers what it kept, deleted and wrote, which corrects `counts`: what it left out is
   * stale (versioned) or skipped (a later record of the batch had a key PostgreSQL finds equal).
   */
  async #run(
    client: pg.PoolClient,
    statements: PlannedStatement[],
    what: string,
    counts: WriteCounts,
    checkDeferred = false,
  ): Promise<SinkError | undefined> {
    try {
      // checkDeferred (after a COMMIT broke a deferred constraint): the statements run with constraints deferred, as
      // always (a child row may come before its parent), and are then checked at once, so that a violation is this
      // attempt's row-level failure, which isolation can pin on a record.
      if (checkDeferred) await this.#query(client, 'SET CONSTRAINTS ALL DEFERRED');
      for (const statement of statements) {
        // An empty name: an unprepared statement (see RoutePlan's row shapes).
        const query = { ...(statement.name ? { name: statement.name } : {}), text: statement.text, values: statement.values };
        const answer = await observeStatement(this.#metrics, statement, () => this.#query(client, query));
        const reduced = statement.reduced;
        if (reduced) {
          // What PostgreSQL's own reduction, or a versioned route's condition, left out of the write.
          const { kept, deleted, written } = answer.rows[0] as { kept: number; deleted: number; written: number };
          if (reduced.versioned) {
            counts.upserted += written - reduced.values;
            counts.stale += reduced.values - written;
          } else {
            counts.upserted += kept - reduced.values;
            counts.deleted += deleted - reduced.tombstones;
            counts.skipped += reduced.values - kept + (reduced.tombstones - deleted);
          }
        }
      }
      if (checkDeferred) await this.#query(client, 'SET CONSTRAINTS ALL IMMEDIATE');
      return undefined;
    } catch (error) {
      const failure = classifyPgError(error, what);
      if (failure.rowLevel) return failure;
      throw this.#failed(failure);
    }
  }

  /**
   * Finds, inside the open transaction, the records of `records` the database rejects; the caller rolls back what
   * this wrote. JSON the server could not parse is found in one pass in JavaScript; whatever remains is bisected
   * with a savepoint per attempt (see isolatePoison), so k poison records in n cost about k·log2(n) statements.
   */
  async #isolate(
    client: pg.PoolClient,
    plans: RoutePlan[],
    records: SourceRecord[],
    failure: SinkError,
    what: string,
    checkDeferred: boolean,
  ): Promise<PoisonRecord[]> {
    const poison: PoisonRecord[] = [];
    if (failure.sqlState?.startsWith('22')) {
      const seen = new Set<SourceRecord>();
      for (const plan of plans) {
        for (const m of plan.findMalformed(records)) {
          if (seen.has(m.record)) continue;
          seen.add(m.record);
          // The database's rejection of the batch is the cause: its SQLSTATE travels with the record to the DLQ.
          poison.push({ record: m.record, error: new PoisonRecordError(m.record, m.error.reason, failure) });
        }
      }
      if (poison.length > 0) records = withoutPoison(records, poison);
    }
    const savepoint = 'sluice_isolate';
    await this.#query(client, `SAVEPOINT ${savepoint}`);
    const attempt = async (subset: readonly SourceRecord[]): Promise<Error | undefined> => {
      const prepared = prepareAll(plans, subset);
      const rejected = await this.#run(client, prepared.statements, what, prepared.counts, checkDeferred);
      if (rejected) {
        await this.#query(client, `ROLLBACK TO SAVEPOINT ${savepoint}`);
        return rejected;
      }
      // One round trip: keep what this subset wrote (the bisection needs it; the caller then rolls it all back),
      // and open the savepoint for the next attempt.
      await this.#query(client, `RELEASE SAVEPOINT ${savepoint}; SAVEPOINT ${savepoint}`, 2);
      return undefined;
    };
    // After the malformed values are out, the rest may well go through as a whole.
    const wholeFailure = poison.length > 0 ? await attempt(records) : failure;
    if (wholeFailure) {
      for (const { item, error } of await isolatePoison(records, attempt)) {
        const cause = error instanceof SinkError ? error : classifyPgError(error, what);
        const reason = `PostgreSQL rejected it: ${errorMessage(cause.cause)}${cause.sqlState ? ` (SQLSTATE ${cause.sqlState})` : ''}`;
        poison.push({ record: item, error: new PoisonRecordError(item, reason, cause) });
      }
    }
    return poison;
  }

  /** A connection from the pool; failing to get one is classified (transient while the database is unreachable). */
  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (error) {
      throw this.#failed(classifyPgError(error, 'connecting to PostgreSQL'));
    }
  }

  /** Every query of a flush goes through here, so that the count of statements sent is exact. */
  async #query(client: pg.PoolClient, query: string | pg.QueryConfig, statements = 1): Promise<pg.QueryResult> {
    this.counters.statements += statements;
    return client.query(query);
  }

  /** Notes whether the database was reachable, for readiness. */
  #failed(error: SinkError): SinkError {
    if (error.unavailable) {
      this.#available = false;
      this.#probeUntilAvailable(0);
    }
    return error;
  }

  /**
   * While the database counts as unreachable, `SELECT 1` on a pooled connection, with backoff (0.5 s doubling to
   * 5 s): the first answer makes it available, whether or not a flush needs it meanwhile.
   */
  #probeUntilAvailable(attempt: number): void {
    if (this.#probe || this.#closed) return;
    this.#probe = setTimeout(() => {
      void this.#probeOnce().then((answered) => {
        this.#probe = undefined;
        if (answered) {
          if (!this.#available) this.#log.info('PostgreSQL answers again');
          this.#available = true;
        } else if (!this.#available) this.#probeUntilAvailable(attempt + 1);
      });
    }, backoffMs(attempt, 500, 5_000));
    this.#probe.unref();
  }

  /**
   * Whether a new session can be opened and answers a trivial query; never throws. A new connection, not an idle
   * pooled one: an idle connection can still answer while new ones are refused (too many connections).
   */
  async #probeOnce(): Promise<boolean> {
    if (this.#closed) return false;
    const client = new pg.Client({ connectionString: this.#options.database.url, connectionTimeoutMillis: 5_000, application_name: `sluice ${this.#options.kafka.groupId} probe` });
    client.on('error', (error) => this.#log.debug({ err: error }, 'the probe connection failed'));
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch (error) {
      this.#log.debug({ err: error }, `PostgreSQL probe failed: ${errorMessage(error)}`);
      return false;
    } finally {
      await client.end().catch((error: unknown) => this.#log.debug({ err: error }, 'closing the probe connection failed'));
    }
  }

  /**
   * Cancels the statements in flight (pg_cancel_backend from a connection of its own): their flushes roll back and
   * give their connections back, so that closing the pool does not wait for them. For a shutdown whose grace time
   * is over: nothing more is committed.
   */
  async cancelInFlight(): Promise<void> {
    const pids = [...this.#inUse].map((c) => (c as unknown as { processID?: number }).processID).filter((pid): pid is number => typeof pid === 'number');
    if (pids.length === 0) return;
    const canceller = new pg.Client({ connectionString: this.#options.database.url, connectionTimeoutMillis: 2_000, application_name: 'sluice shutdown' });
    try {
      await canceller.connect();
      await canceller.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
      this.#log.info({ backends: pids.length }, 'cancelled the statements still running at the end of the grace time');
    } catch (error) {
      this.#log.warn({ err: error }, `cancelling the statements still running failed: ${errorMessage(error)}`);
    } finally {
      await canceller.end().catch((error: unknown) => this.#log.debug({ err: error }, 'closing the cancelling connection failed'));
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#probe);
    await this.#pool.end();
  }
}

/**
 * Landing mode: one row per (topic, Kafka key), the last value winning, and one row per record for records without
 * a key. Rows are keyed by the key's SHA-256 (keyHash), so a key of any size and any bytes lands; the key itself is
 * kept as it was, as bytea.
 */
function landingRoute(topic: string, table: string): ResolvedRoute {
  return {
    topic,
    table,
    key: ['topic', 'key_hash'],
    tombstones: 'delete',
    format: 'json',
    mode: 'upsert',
    columns: {
      topic: { from: 'topic' },
      key_hash: { from: 'keyHash' },
      key: { from: 'key' },
      value: { from: 'value' },
      kafka_partition: { from: 'partition' },
      kafka_offset: { from: 'offset' },
      kafka_timestamp: { from: 'timestamp' },
    },
  };
}

function planInput(route: ResolvedRoute, shape: TableShape, validation: ResolvedOptions['validation']): RoutePlanInput {
  const table = route.table;
  const mapping =
    route.columns ??
    Object.fromEntries([...shape.columns.keys()].map((name) => [name, { from: 'field' as const, field: name }]));
  const missing = Object.keys(mapping).filter((name) => !shape.columns.has(name));
  if (missing.length > 0) {
    throw new SchemaError(table, `table ${table} has no column(s) ${missing.join(', ')} (route for topic ${route.topic})`);
  }
  const keySet = [...route.key].sort().join(',');
  const uniqueKey = shape.uniqueKeys.find((k) => [...k.columns].sort().join(',') === keySet);
  if (route.mode === 'upsert' && !uniqueKey) {
    throw new SchemaError(
      table,
      `table ${table} has no primary key or unique index on (${route.key.join(', ')}), which the upsert needs (route for topic ${route.topic})`,
    );
  }
  const columns: PlannedColumn[] = Object.entries(mapping).map(([name, m]) => {
    const tableType = shape.columns.get(name)!;
    const at = uniqueKey?.columns.indexOf(name) ?? -1;
    const collation = at >= 0 ? uniqueKey!.collations[at] : undefined;
    return {
      name,
      // A transform's rows name columns directly, so every column reads the row field of the same name.
      from: route.transform ? 'field' : m.from,
      field: route.transform ? name : (m.field ?? name),
      type: m.type ?? tableType,
      // Key columns are compared as the unique index compares them: the table's type, the index's collation.
      ...(at >= 0 && m.type !== undefined && m.type !== tableType ? { tableType } : {}),
      ...(collation ? { collation } : {}),
      ...(at >= 0 && !uniqueKey!.deterministic[at] ? { deterministic: false } : {}),
    };
  });
  return {
    topic: route.topic,
    table,
    key: route.key,
    columns,
    tombstones: route.tombstones,
    // Values reach the plan as JSON objects (formats/route-decoder.ts); Debezium's deletes carry the deleted row.
    deletes: route.envelope === 'debezium',
    mode: route.mode,
    version: route.version,
    transform: route.transform,
    columnsFromRows: route.transform !== undefined && route.columns === undefined,
    maxRecordBytes: validation.maxRecordBytes,
    maxJsonDepth: validation.maxJsonDepth,
  };
}
