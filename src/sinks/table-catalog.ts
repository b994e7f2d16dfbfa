import type pg from 'pg';
import { SchemaError } from '../errors.js';
import { quoteTable } from './sql-identifiers.js';

/** A primary key or unique index: a valid `ON CONFLICT` target, and the equality it decides conflicts by. */
export interface UniqueKey {
  columns: string[];
  /** Per column: the collation (quoted, schema-qualified) where it is not the type's default; undefined otherwise. */
  collations: Array<string | undefined>;
  /** Per column: false when that collation is nondeterministic (values differing in bytes can be equal). */
  deterministic: boolean[];
}

export interface TableShape {
  /** Column name → type as PostgreSQL formats it (`format_type`). */
  columns: Map<string, string>;
  /** The primary key and every unique index without expressions or a predicate. */
  uniqueKeys: UniqueKey[];
}

/** Reads a table's columns and unique keys; a missing table is a SchemaError naming it. */
export async function describeTable(client: pg.ClientBase, table: string): Promise<TableShape> {
  const found = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [quoteTable(table)]);
  const oid = found.rows[0]?.oid;
  if (!oid) throw new SchemaError(table, `table ${table} does not exist (create it, or fix the route's table name)`);
  const columns = await client.query<{ name: string; type: string }>(
    `SELECT attname::text AS name, format_type(atttypid, atttypmod) AS type
       FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [oid],
  );
  // The index's own collation per column (an index may declare another than its column's).
  const keys = await client.query<{ columns: string[]; collations: Array<string | null>; deterministic: boolean[] }>(
    `SELECT array_agg(a.attname::text ORDER BY k.ord) AS columns,
            array_agg(CASE WHEN k.coll <> 0 AND k.coll <> t.typcollation
                           THEN quote_ident(n.nspname) || '.' || quote_ident(c.collname) END ORDER BY k.ord) AS collations,
            array_agg(COALESCE(c.collisdeterministic, true) ORDER BY k.ord) AS deterministic
       FROM pg_index i
       CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indcollation::oid[]) WITH ORDINALITY AS k(attnum, coll, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_collation c ON c.oid = k.coll
       LEFT JOIN pg_namespace n ON n.oid = c.collnamespace
      WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      GROUP BY i.indexrelid`,
    [oid],
  );
  return {
    columns: new Map(columns.rows.map((r) => [r.name, r.type])),
    uniqueKeys: keys.rows.map((r) => ({
      columns: r.columns,
      collations: r.collations.map((c) => c ?? undefined),
      deterministic: r.deterministic,
    })),
  };
}

/** Whether `table` (`schema.table` or `table`, on the search path) exists. */
export async function tableExists(client: pg.ClientBase, table: string): Promise<boolean> {
  const found = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [quoteTable(table)]);
  return Boolean(found.rows[0]?.oid);
}

/**
 * Creates a table sluice owns unless it exists: a database user without CREATE on the schema can use one made by
 * someone else. `columns` is the body of CREATE TABLE. Members starting at once may race on CREATE TABLE IF NOT
 * EXISTS; the loser sees the type or relation already created (23505 / 42P07), which is the outcome it wanted.
 */
export async function createTableIfMissing(client: pg.ClientBase, table: string, columns: string): Promise<void> {
  if (await tableExists(client, table)) return;
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${quoteTable(table)} (${columns})`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== '23505' && code !== '42P07') throw error;
  }
}

/**
 * The landing table: one row per (topic, Kafka key), last value wins, and one row per record without a key. The
 * primary key holds the key's SHA-256 (of partition and offset for a record without one), so that keys of any size
 * and any bytes fit the index; `key` keeps the Kafka key's bytes as they were (NULL: no key).
 */
export async function createLandingTable(client: pg.ClientBase, table: string): Promise<void> {
  await createTableIfMissing(
    client,
    table,
    `topic text NOT NULL,
     key_hash bytea NOT NULL,
     key bytea,
     value jsonb,
     kafka_partition integer NOT NULL,
     kafka_offset bigint NOT NULL,
     kafka_timestamp timestamptz NOT NULL,
     PRIMARY KEY (topic, key_hash)`,
  );
  const shape = await describeTable(client, table);
  if (!shape.columns.has('key_hash')) {
    throw new SchemaError(
      table,
      `landing table ${table} has the layout of an earlier sluice (keyed on the key as text, which refused records without a key); ` +
        `rename or drop it (ALTER TABLE ${quoteTable(table)} RENAME TO …) and sluice creates the new one, or set SLUICE_LANDING_TABLE`,
    );
  }
}
