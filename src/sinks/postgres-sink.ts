import pg from 'pg';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import type { ResolvedRoute } from '../config/route-options.js';
import { SchemaError, SinkError } from '../errors.js';
import { Attr } from '../observability/semconv.js';
import { withSpan } from '../observability/tracing.js';
import { classifyPgError } from './classify-pg-error.js';
import { RoutePlan, type PlannedColumn, type RoutePlanInput } from './route-plan.js';
import type { Batch, Sink, WriteContext, WriteResult } from './sink.js';
import { createLandingTable, describeTable, type TableShape } from './table-catalog.js';

/** Statements sent to PostgreSQL by one flush, counted for the stats line and for tests. */
export interface SinkCounters {
  transactions: number;
  statements: number;
  rolledBack: number;
}

/**
 * Writes each batch in one transaction: per route, a DELETE for tombstones and one INSERT … ON CONFLICT for the
 * rest, each a named prepared statement with a fixed parameter list.
 */
export class PostgresSink implements Sink {
  readonly #options: ResolvedOptions;
  readonly #log: Logger;
  readonly #pool: pg.Pool;
  readonly #plans = new Map<string, RoutePlan[]>();
  readonly counters: SinkCounters = { transactions: 0, statements: 0, rolledBack: 0 };

  constructor(options: ResolvedOptions, log: Logger) {
    this.#options = options;
    this.#log = log;
    this.#pool = new pg.Pool({
      connectionString: options.database.url,
      max: options.database.poolSize,
      statement_timeout: options.database.statementTimeoutMs,
      application_name: `sluice ${options.kafka.groupId}`,
      connectionTimeoutMillis: 10_000,
    });
    // An idle client's error (server restart, network drop) is emitted on the pool; unhandled it would crash the
    // process. The next checkout gets a fresh connection, so logging is the whole handling.
    this.#pool.on('error', (error) => this.#log.warn({ err: error }, 'idle PostgreSQL connection failed; it will be replaced'));
  }

  /** Topics that have at least one route. */
  get topics(): string[] {
    return [...this.#plans.keys()];
  }

  async start(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw classifyPgError(error, 'connecting to PostgreSQL');
    }
    try {
      const routes = [...this.#options.routes];
      if (this.#options.landing) {
        await createLandingTableOnce(client, this.#options.landing.table);
        for (const topic of this.#options.landing.topics) routes.push(landingRoute(topic, this.#options.landing.table));
      }
      let id = 0;
      for (const route of routes) {
        const shape = await describeTable(client, route.table);
        const plan = new RoutePlan(planInput(route, shape), `sluice-r${id++}`);
        const list = this.#plans.get(route.topic) ?? [];
        list.push(plan);
        this.#plans.set(route.topic, list);
        this.#log.info({ topic: route.topic, table: route.table }, 'route ready');
      }
    } catch (error) {
      if (error instanceof SchemaError) throw error;
      throw classifyPgError(error, 'checking the routes against the database');
    } finally {
      client.release();
    }
  }

  write(batch: Batch, context: WriteContext): Promise<WriteResult> {
    return withSpan(
      'sluice flush',
      {
        [Attr.messagingSystem]: 'kafka',
        [Attr.destinationName]: batch.topic,
        [Attr.partitionId]: String(batch.partition),
        [Attr.consumerGroup]: this.#options.kafka.groupId,
        [Attr.batchMessageCount]: batch.records.length,
        [Attr.dbSystem]: 'postgresql',
      },
      () => this.#write(batch, context),
    );
  }

  async #write(batch: Batch, context: WriteContext): Promise<WriteResult> {
    const plans = this.#plans.get(batch.topic);
    if (!plans) throw new SinkError(`no route for topic ${batch.topic}`, { retriable: false });
    // Preparing first keeps the transaction short and raises poison records before any connection is taken.
    const prepared = plans.map((plan) => plan.prepare(batch.records));
    const result: WriteResult = { committed: false, upserted: 0, deleted: 0, skipped: 0 };
    for (const p of prepared) {
      result.upserted += p.upserted;
      result.deleted += p.deleted;
      result.skipped += p.skipped;
    }
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw classifyPgError(error, 'connecting to PostgreSQL');
    }
    let broken = false;
    try {
      context.signal.throwIfAborted();
      await client.query('BEGIN');
      for (const p of prepared) {
        for (const statement of p.statements) {
          await client.query({ name: statement.name, text: statement.text, values: statement.values });
          this.counters.statements++;
        }
      }
      if (!context.isCurrent()) {
        await client.query('ROLLBACK');
        this.counters.rolledBack++;
        return { ...result, committed: false };
      }
      await client.query('COMMIT');
      this.counters.transactions++;
      return { ...result, committed: true };
    } catch (error) {
      broken = true;
      // The transaction is void either way; a failed ROLLBACK only means the connection is gone, and that
      // connection is destroyed below rather than returned to the pool.
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        this.#log.debug({ err: rollbackError }, 'rollback after a failed flush also failed');
      });
      const failure = classifyPgError(error, `writing ${batch.records.length} records of ${batch.topic}[${batch.partition}]`);
      // A data error (class 22) on the batch's JSON: name the record rather than the batch.
      if (failure.sqlState?.startsWith('22')) {
        for (const plan of plans) {
          const poison = plan.findMalformed(batch.records);
          if (poison) throw poison;
        }
      }
      throw failure;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

function landingRoute(topic: string, table: string): ResolvedRoute {
  return {
    topic,
    table,
    key: ['topic', 'key'],
    tombstones: 'delete',
    format: 'json',
    columns: {
      topic: { from: 'topic' },
      key: { from: 'key' },
      value: { from: 'value' },
      kafka_partition: { from: 'partition' },
      kafka_offset: { from: 'offset' },
      kafka_timestamp: { from: 'timestamp' },
    },
  };
}

async function createLandingTableOnce(client: pg.ClientBase, table: string): Promise<void> {
  try {
    await createLandingTable(client, table);
  } catch (error) {
    // Several members starting at once may race on CREATE TABLE IF NOT EXISTS; the loser sees the type or
    // relation already created (23505 / 42P07), which is the outcome it wanted.
    const code = (error as { code?: string }).code;
    if (code !== '23505' && code !== '42P07') throw error;
  }
}

function planInput(route: ResolvedRoute, shape: TableShape): RoutePlanInput {
  const table = route.table;
  const mapping =
    route.columns ??
    Object.fromEntries([...shape.columns.keys()].map((name) => [name, { from: 'field' as const, field: name }]));
  const missing = Object.keys(mapping).filter((name) => !shape.columns.has(name));
  if (missing.length > 0) {
    throw new SchemaError(table, `table ${table} has no column(s) ${missing.join(', ')} (route for topic ${route.topic})`);
  }
  const keySet = [...route.key].sort().join(',');
  if (!shape.uniqueKeys.some((k) => [...k].sort().join(',') === keySet)) {
    throw new SchemaError(
      table,
      `table ${table} has no primary key or unique index on (${route.key.join(', ')}), which the upsert needs (route for topic ${route.topic})`,
    );
  }
  const columns: PlannedColumn[] = Object.entries(mapping).map(([name, m]) => ({
    name,
    // A transform's rows name columns directly, so every column reads the row field of the same name.
    from: route.transform ? 'field' : m.from,
    field: route.transform ? name : (m.field ?? name),
    type: m.type ?? shape.columns.get(name)!,
  }));
  return {
    topic: route.topic,
    table,
    key: route.key,
    columns,
    tombstones: route.tombstones,
    format: route.format,
    transform: route.transform,
  };
}
