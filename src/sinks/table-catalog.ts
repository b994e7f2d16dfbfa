import type pg from 'pg';
import { SchemaError } from '../errors.js';
import { quoteTable } from './sql-identifiers.js';

export interface TableShape {
  /** Column name → type as PostgreSQL formats it (`format_type`). */
  columns: Map<string, string>;
  /** Column name → its collation (quoted, schema-qualified) where it is not its type's default. */
  collations: Map<string, string>;
  /** Columns whose collation is nondeterministic (values that differ in bytes may be equal). */
  nondeterministic: Set<string>;
  /** Column sets of the primary key and every unique index: valid `ON CONFLICT` targets. */
  uniqueKeys: string[][];
}

/** Reads a table's columns and unique keys; a missing table is a SchemaError naming it. */
export async function describeTable(client: pg.ClientBase, table: string): Promise<TableShape> {
  const found = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [quoteTable(table)]);
  const oid = found.rows[0]?.oid;
  if (!oid) throw new SchemaError(table, `table ${table} does not exist (create it, or fix the route's table name)`);
  const columns = await client.query<{ name: string; type: string; collation: string | null; deterministic: boolean }>(
    `SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type,
            COALESCE(c.collisdeterministic, true) AS deterministic,
            CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                 THEN quote_ident(n.nspname) || '.' || quote_ident(c.collname) END AS collation
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_collation c ON c.oid = a.attcollation
       LEFT JOIN pg_namespace n ON n.oid = c.collnamespace
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [oid],
  );
  const keys = await client.query<{ columns: string[] }>(
    `SELECT array_agg(a.attname::text ORDER BY k.ord) AS columns
       FROM pg_index i
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      GROUP BY i.indexrelid`,
    [oid],
  );
  return {
    columns: new Map(columns.rows.map((r) => [r.name, r.type])),
    collations: new Map(columns.rows.flatMap((r) => (r.collation ? [[r.name, r.collation] as const] : []))),
    nondeterministic: new Set(columns.rows.filter((r) => !r.deterministic).map((r) => r.name)),
    uniqueKeys: keys.rows.map((r) => r.columns),
  };
}

/**
 * Creates a table sluice owns unless it exists: a database user without CREATE on the schema can use one made by
 * someone else. `columns` is the body of CREATE TABLE. Members starting at once may race on CREATE TABLE IF NOT
 * EXISTS; the loser sees the type or relation already created (23505 / 42P07), which is the outcome it wanted.
 */
export async function createTableIfMissing(client: pg.ClientBase, table: string, columns: string): Promise<void> {
  const found = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [quoteTable(table)]);
  if (found.rows[0]?.oid) return;
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
