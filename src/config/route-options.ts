import type { SourceRecord } from '../record.js';

/**
 * Where a column's value comes from. `field` reads a top-level field of the JSON value. `key` is the Kafka key: its
 * bytes unchanged into a bytea column, its UTF-8 text into any other (a route with a `keyFormat`: the key decoded
 * to JSON). `keyField` reads a top-level field of the key, decoded by the route's `keyFormat`. `keyHash` is SHA-256
 * of the Kafka key, or of the partition and offset for a record without one: a key that fits any index, with a row
 * per keyless record.
 */
export const ColumnSources = ['field', 'key', 'keyField', 'keyHash', 'value', 'topic', 'partition', 'offset', 'timestamp'] as const;
export type ColumnSource = (typeof ColumnSources)[number];

export interface ColumnMapping {
  from: ColumnSource;
  /** JSON field name, for `from: field` (defaults to the column name). */
  field?: string;
  /** PostgreSQL type; defaults to the column's type in the table. */
  type?: string;
}

/**
 * What a record without a value still carries: its Kafka key (and so its hash), topic and partition. A tombstone
 * can delete a row whose key is made only of these.
 */
export const tombstoneKeySources: readonly ColumnSource[] = ['key', 'keyField', 'keyHash', 'topic', 'partition'];

/**
 * How a record's value is read. `json`: the value is a JSON object whose top-level fields are the fields.
 * `connect-json`: Kafka Connect's JsonConverter with `schemas.enable=true`, `{"schema": …, "payload": {…}}`; the
 * fields are those of `payload` and `from: value` stores the payload. The schema part is not interpreted.
 * `avro`, `protobuf`, `json-schema`: the schema registry's wire format (a magic byte, a schema id, the payload),
 * read with the schema the registry holds under that id (see {@link RegistryFormats}).
 */
export const ValueFormats = ['json', 'connect-json', 'avro', 'protobuf', 'json-schema'] as const;
export type ValueFormat = (typeof ValueFormats)[number];

/**
 * Formats whose values are decoded with a schema from the registry before the route reads them: the decoded value
 * is a JSON object whose fields map to columns as a `json` value's do, with exact types (decimals, 64-bit integers,
 * timestamps to the microsecond, bytes).
 */
export const RegistryFormats = ['avro', 'protobuf', 'json-schema'] as const;
export type RegistryFormat = (typeof RegistryFormats)[number];

/**
 * What a decoded value is. `debezium`: a Debezium change event (`before`, `after`, `op`): `after` is the row for
 * creates, updates and snapshot reads (`op` c, u, r), and a delete (`op` d) deletes the row `before` names, by the
 * route's key. Any format can carry it (Avro and Connect JSON from Debezium's converters, plain JSON).
 */
export const Envelopes = ['debezium'] as const;
export type Envelope = (typeof Envelopes)[number];

/** How a Kafka key is read for `from: keyField`: a JSON object, or a registry format decoded to one. */
export const KeyFormats = ['json', 'avro', 'protobuf', 'json-schema'] as const;
export type KeyFormat = (typeof KeyFormats)[number];

export const isRegistryFormat = (format: ValueFormat | KeyFormat): format is RegistryFormat => (RegistryFormats as readonly string[]).includes(format);

/**
 * How records become rows. `upsert`: one row per key, `INSERT … ON CONFLICT (key) DO UPDATE`. `append`: every
 * record is a new row (`INSERT` only, no key); a record written twice would show as two rows.
 */
export const WriteModes = ['upsert', 'append'] as const;
export type WriteMode = (typeof WriteModes)[number];

export const TombstonePolicies = ['delete', 'ignore'] as const;
export type TombstonePolicy = (typeof TombstonePolicies)[number];

/** A row for a route's table, keyed by column name. */
export type Row = Record<string, unknown>;

/**
 * Library-only escape hatch for what a declarative mapping cannot say. Returns the row(s) to upsert, keyed by
 * column name, or null to skip the record. A throw marks the record as poison.
 */
export type RecordTransform = (record: SourceRecord) => Row | Row[] | null;

export interface RouteOptions {
  topic: string;
  /** `table` or `schema.table`; quoted as given. */
  table: string;
  /** `upsert` (default) or `append`. */
  mode?: WriteMode;
  /** Columns of the table's primary key or a unique constraint: the upsert's conflict target. Not for `append`. */
  key?: string[];
  /**
   * A mapped column holding the record's version (a number or a timestamp, such as `version` or `updated_at`).
   * A stored row is only replaced by a record whose version is not older; an older record is counted as stale.
   */
  version?: string;
  /**
   * Column name → mapping; a string is shorthand for `{ from: 'field', field: <string> }`. With a `transform`,
   * only the names matter (its rows name the columns); without `columns` it writes every column of the table.
   */
  columns?: Record<string, ColumnMapping | string>;
  /** What a record with a null value does. `delete` needs every key column to come from the Kafka key. */
  tombstones?: TombstonePolicy;
  /** How the value is read (default `json`); not used with a transform, which reads the raw record. */
  format?: ValueFormat;
  /** The decoded value is a change event (see {@link Envelopes}); by default it is the row itself. */
  envelope?: Envelope;
  /** How the Kafka key is read, for `from: keyField` columns; by default it is not decoded. */
  keyFormat?: KeyFormat;
  transform?: RecordTransform;
}

/** A route after validation: column shorthands expanded, tombstone policy decided. */
export type ResolvedRoute = Omit<RouteOptions, 'columns' | 'tombstones' | 'format' | 'mode' | 'key'> & {
  columns?: Record<string, ColumnMapping>;
  tombstones: TombstonePolicy;
  format: ValueFormat;
  mode: WriteMode;
  /** Empty for `append`. */
  key: string[];
};
