import {
  type ColumnSource,
  type RecordTransform,
  type Row,
  type TombstonePolicy,
  type WriteMode,
} from '../config/route-options.js';
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { PoisonRecordError, SchemaError, errorMessage } from '../errors.js';
import type { SourceRecord } from '../record.js';
import { checkedObjectSpan, isDeletion } from '../formats/record-decoder.js';
import { MemberName, memberSpan, objectSpan } from './json-span.js';
import { quoteIdentifier, quoteTable } from './sql-identifiers.js';

export interface PlannedColumn {
  name: string;
  from: ColumnSource;
  /** JSON field, for `from: field`. */
  field: string;
  /** PostgreSQL type the value is cast to. */
  type: string;
  /**
   * Key columns: the table's own type where the route casts to another; keys are compared as the table's unique
   * index compares them.
   */
  tableType?: string;
  /**
   * Key columns: the unique index's collation where it is not the type's default (a quoted name). Key equality
   * follows it, so PostgreSQL's reduction (`DISTINCT ON`) uses it too.
   */
  collation?: string;
  /** Key columns: false when that collation is nondeterministic (values differing in bytes may be equal). */
  deterministic?: boolean;
}

export interface RoutePlanInput {
  topic: string;
  table: string;
  key: string[];
  columns: PlannedColumn[];
  tombstones: TombstonePolicy;
  /** Defaults to `upsert`; `append` has no key. */
  mode?: WriteMode;
  /** Version column of a versioned upsert: an older record never replaces a stored row. */
  version?: string;
  /**
   * Records may be change events that delete a row ({@link isDeletion}): their value is the row, and the key to
   * delete is read from it as for a row that is written. Kafka tombstones still follow `tombstones`.
   */
  deletes?: boolean;
  transform: RecordTransform | undefined;
  /**
   * A transform route without `columns`: `columns` lists every column of the table, and each row writes only the
   * columns it has, so the table's defaults (a bigserial id, a DEFAULT now()) apply to the rest.
   */
  columnsFromRows?: boolean;
  /** A record whose key plus value is larger is poison. */
  maxRecordBytes?: number;
  /**
   * Whether equal text is always the same UTF-8 bytes in this database: true for a UTF8 (or SQL_ASCII) server
   * encoding; in another, converting from UTF-8 can map two characters to one. Defaults to true.
   */
  textEqualityIsBytes?: boolean;
  /** A JSON value nesting objects and arrays deeper than this is poison. */
  maxJsonDepth?: number;
}

/** One statement and its parameters. */
export interface PlannedStatement {
  name: string;
  text: string;
  values: unknown[];
  /** For traces and metrics: the table written, the operation, and the rows the statement carries. */
  table: string;
  operation: 'INSERT' | 'DELETE';
  rows: number;
  /**
   * A statement that reduces `values` rows and `tombstones` by PostgreSQL's own key equality and answers one row:
   * `kept` (rows left to write), `deleted` (tombstones left to delete) and `written` (rows inserted or replaced).
   * What its reduction or a versioned route's condition left out corrects the counts: `stale` for a versioned
   * route, `skipped` otherwise.
   */
  reduced?: { values: number; tombstones: number; versioned: boolean };
}

/** A record this route cannot write, and why. */
export interface RejectedRecord {
  record: SourceRecord;
  error: PoisonRecordError;
}

export interface PreparedWrite {
  statements: PlannedStatement[];
  upserted: number;
  deleted: number;
  skipped: number;
  /** Poison records, left out of the statements. */
  rejected: RejectedRecord[];
}

/**
 * Per-batch parameters: the json array, the constant topic and partition, one array per record metadata, the
 * rows' positions in the batch, and, for the tombstones of a route PostgreSQL reduces, their keys and positions.
 */
type ParamKind =
  | 'json'
  | 'keyJson'
  | 'tombstoneKeyJson'
  | 'value'
  | 'key'
  | 'keyBytes'
  | 'keyHash'
  | 'topic'
  | 'partition'
  | 'offset'
  | 'timestamp'
  | 'position'
  | 'tombstoneKey'
  | 'tombstoneKeyBytes'
  | 'tombstoneKeyHash'
  | 'tombstonePosition'
  | 'tombstoneJson';
/** Record metadata sent as an array, one element per row, and the SQL array type it is sent as. */
const arrayKinds = [
  ['value', 'text'],
  ['key', 'text'],
  ['keyBytes', 'bytea'],
  ['keyHash', 'bytea'],
  ['offset', 'bigint'],
  ['timestamp', 'bigint'],
] as const;
type ArrayKind = (typeof arrayKinds)[number][0];

const timestampTypes = /^(timestamp|timestamptz|date)/;

/**
 * Types whose equality is byte equality of the text sluice sends (under a deterministic collation, in a UTF-8
 * database): for a key made of these, JavaScript's reduction on bytes is already PostgreSQL's.
 */
const byteEqualTextTypes = /^(text|character varying(\(\d+\))?)$/;

/**
 * The type a value is cast to: the column's, without a length limit. An explicit cast to `varchar(3)` or `char(3)`
 * cuts the value silently (and cut keys would collide); without the length, the assignment into the column refuses
 * a value that is too long (SQLSTATE 22001, a row-level error that isolates the record).
 */
function castType(type: string): string {
  const limited = /^(character varying|character|bit varying|bit)\(\d+\)((?:\[\])*)$/.exec(type);
  if (!limited) return type;
  const base = { 'character varying': 'character varying', character: 'bpchar', 'bit varying': 'bit varying', bit: 'varbit' }[limited[1]!];
  return `${base}${limited[2]}`;
}

/**
 * A key column's value as the unique index compares it: cast to the route's type, then to the table's where they
 * differ, under the index's collation.
 */
function keyExpr(c: PlannedColumn, expr: string): string {
  let out = `CAST(${expr} AS ${castType(c.type)})`;
  if (c.tableType) out = `CAST(${out} AS ${castType(c.tableType)})`;
  return c.collation ? `${out} COLLATE ${c.collation}` : out;
}

/** A Kafka key bound for a bytea column travels as its bytes; for any other type, as UTF-8 text. */
const keyKind = (column: PlannedColumn): 'key' | 'keyBytes' => (column.type === 'bytea' ? 'keyBytes' : 'key');

/**
 * A route compiled against its table: fixed SQL text whose parameter count does not grow with the batch, and the
 * per-batch work that turns records into those parameters.
 *
 * Records with the same key are reduced to the last one (by offset) before they reach PostgreSQL, but equality is
 * PostgreSQL's to decide: JavaScript only merges records whose key is the same *bytes* (the Kafka key, the JSON
 * text of a key field), which PostgreSQL can never tell apart, and the upsert keeps the last row per key by its own
 * equality (`DISTINCT ON` the key, ordered by position in the batch), which merges what JavaScript cannot see is
 * equal (`1.10` and `1.1` for a numeric column, UUIDs in two cases, citext). So `ON CONFLICT DO UPDATE` never meets
 * the same row twice, and no two rows PostgreSQL tells apart are ever merged. No JSON number becomes a JavaScript
 * number on the way.
 *
 * The batch travels as arrays: JSON values joined into one json array read by `json_to_recordset`, Kafka
 * metadata as `unnest` arrays, zipped row by row by `ROWS FROM`. JSON values are parsed in JavaScript only for a
 * transform; otherwise PostgreSQL parses them.
 */
export class RoutePlan {
  readonly topic: string;
  readonly table: string;
  readonly #columns: PlannedColumn[];
  readonly #key: PlannedColumn[];
  /** Key columns that differ between records of one batch (topic and partition do not): the reduction key. */
  readonly #reductionParts: Array<{ column: PlannedColumn; field: MemberName | undefined }>;
  readonly #tombstones: TombstonePolicy;
  readonly #transform: RecordTransform | undefined;
  /** Some records delete rows: Kafka tombstones under `tombstones: delete`, or change events that delete. */
  readonly #deletes: boolean;
  /** Values travel as one json array (fields are read from it), not as text. */
  readonly #sendsJson: boolean;
  /** Which per-record arrays the upsert reads. */
  readonly #arrays: Record<ArrayKind, boolean>;
  /** A key column is the Kafka key (or a field of it): a record without one cannot be written. */
  readonly #keyNeedsKafkaKey: boolean;
  /** Columns read fields of the Kafka key (`keyField`): keys travel as a json array too. */
  readonly #readsKeyFields: boolean;
  /** Every record is its own row (append, or the offset is part of the key): nothing to reduce. */
  readonly #eachRecordItsOwnRow: boolean;
  /**
   * Records are not reduced in JavaScript: each is its own row, or the route is versioned (the newest version wins
   * in PostgreSQL, not the last offset).
   */
  readonly #dedupeNone: boolean;
  readonly #append: boolean;
  readonly #version: PlannedColumn | undefined;
  readonly #upsertSql: string;
  /**
   * Every key column is the Kafka key (or its hash) in a type whose equality is byte equality, or the topic or
   * partition: the reduction in JavaScript is then exactly PostgreSQL's, and the statements need none of their own.
   */
  readonly #keyEqualityIsBytes: boolean;
  readonly #delete: { text: string; params: ParamKind[] } | undefined;
  /** PostgreSQL reduces the batch by its own key equality (see buildUpsert): the key is not byte-equal. */
  readonly #reduces: boolean;
  readonly #params: ParamKind[];
  readonly #statementId: string;
  /** columnsFromRows: the upsert for each set of columns rows have come with, by their names joined. */
  readonly #upsertsByColumns: Map<string, { name: string; text: string; params: ParamKind[] }> | undefined;
  readonly #maxRecordBytes: number;
  readonly #maxJsonDepth: number;

  /** The table columns this route writes, in the order it writes them. */
  get columnNames(): string[] {
    return this.#columns.map((c) => c.name);
  }

  constructor(input: RoutePlanInput, statementId: string) {
    this.topic = input.topic;
    this.table = input.table;
    this.#statementId = statementId;
    this.#columns = input.columns;
    this.#tombstones = input.tombstones;
    this.#transform = input.transform;
    this.#maxRecordBytes = input.maxRecordBytes ?? Infinity;
    this.#maxJsonDepth = input.maxJsonDepth ?? Infinity;
    this.#deletes = input.tombstones === 'delete' || input.deletes === true;
    this.#key = input.key.map((name) => {
      const column = input.columns.find((c) => c.name === name);
      if (!column) throw new SchemaError(input.table, `route ${input.topic} → ${input.table}: key column ${name} is not mapped`);
      return column;
    });
    const uses = (from: ColumnSource) => input.columns.some((c) => c.from === from);
    this.#append = input.mode === 'append';
    this.#version = input.version === undefined ? undefined : input.columns.find((c) => c.name === input.version);
    if (input.version !== undefined && !this.#version) {
      throw new SchemaError(input.table, `route ${input.topic} → ${input.table}: version column ${input.version} is not mapped`);
    }
    this.#eachRecordItsOwnRow = this.#append || this.#key.some((c) => c.from === 'offset');
    this.#dedupeNone = this.#eachRecordItsOwnRow || this.#version !== undefined;
    this.#reductionParts = this.#key
      .filter((c) => c.from !== 'topic' && c.from !== 'partition')
      .map((column) => ({ column, field: column.from === 'field' || column.from === 'keyField' ? new MemberName(column.field) : undefined }));
    this.#keyNeedsKafkaKey = this.#key.some((c) => c.from === 'key' || c.from === 'keyField');
    this.#readsKeyFields = uses('keyField');
    this.#arrays = {
      value: uses('value'),
      key: input.columns.some((c) => c.from === 'key' && keyKind(c) === 'key'),
      keyBytes: input.columns.some((c) => c.from === 'key' && keyKind(c) === 'keyBytes'),
      keyHash: uses('keyHash'),
      offset: uses('offset'),
      timestamp: uses('timestamp'),
    };
    this.#sendsJson = uses('field');
    this.#keyEqualityIsBytes =
      !this.#eachRecordItsOwnRow &&
      !this.#version &&
      this.#key.every((c) => {
        if (c.from === 'topic' || c.from === 'partition') return true;
        if (c.from !== 'key' && c.from !== 'keyHash') return false;
        const type = c.tableType ?? c.type;
        if (type === 'bytea') return true;
        return byteEqualTextTypes.test(type) && c.deterministic !== false && input.textEqualityIsBytes !== false;
      });
    const built = this.#buildUpsert();
    this.#upsertSql = built.text;
    this.#params = built.params;
    this.#reduces = !this.#append && !this.#eachRecordItsOwnRow && !this.#keyEqualityIsBytes;
    this.#delete = this.#keyEqualityIsBytes && this.#deletes ? this.#buildDelete() : undefined;
    this.#upsertsByColumns = input.columnsFromRows ? new Map() : undefined;
  }

  get upsertSql(): string {
    return this.#upsertSql;
  }

  /** The upsert of `columns` (by default the route's). */
  #buildUpsert(columns: PlannedColumn[] = this.#columns): { text: string; params: ParamKind[] } {
    const params: ParamKind[] = [];
    const param = (kind: ParamKind) => {
      let i = params.indexOf(kind);
      if (i < 0) i = params.push(kind) - 1;
      return `$${i + 1}`;
    };
    // The batch's values (a Connect envelope's payload) as one JSON array of objects, built by jsonArray. Type
    // json, not jsonb: the array is read once, and json_to_recordset reads the text without building a jsonb tree.
    const json = () => `${param('json')}::json`;
    const functions: string[] = [];
    const aliases: string[] = [];
    const columnExpr = new Map<string, string>();
    // Fields of the values (`field`) and of the keys (`keyField`), each read from its json array.
    // (The sources are functions: a parameter is numbered only when a statement uses it.)
    for (const [from, source, prefix] of [['field', json, 'f'], ['keyField', () => `${param('keyJson')}::json`, 'kf']] as const) {
      const read = columns.filter((c) => c.from === from);
      if (read.length === 0) continue;
      const fields = new Map<string, string>();
      for (const c of read) if (!fields.has(c.field)) fields.set(c.field, castType(c.type));
      const definitions = [...fields].map(([field, type]) => `${quoteIdentifier(field)} ${type}`);
      functions.push(`json_to_recordset(${source()}) AS (${definitions.join(', ')})`);
      const fieldAlias = new Map([...fields.keys()].map((field, i) => [field, `${prefix}${i}`]));
      aliases.push(...fieldAlias.values());
      for (const c of read) columnExpr.set(c.name, `r.${fieldAlias.get(c.field)!}`);
    }
    for (const [kind, type] of arrayKinds) {
      if (!this.#arrays[kind]) continue;
      functions.push(kind === 'value' && this.#sendsJson ? `json_array_elements(${json()})` : `unnest(${param(kind)}::${type}[])`);
      aliases.push(`m_${kind}`);
    }
    const selectList = columns.map((c) => {
      let expr: string;
      switch (c.from) {
        case 'field':
        case 'keyField':
          expr = columnExpr.get(c.name)!;
          break;
        case 'topic':
          expr = `${param('topic')}::text`;
          break;
        case 'partition':
          expr = `${param('partition')}::int`;
          break;
        case 'timestamp':
          expr = timestampTypes.test(c.type) ? `to_timestamp(r.m_timestamp / 1000.0)` : `r.m_timestamp`;
          break;
        case 'key':
          expr = `r.m_${keyKind(c)}`;
          break;
        default:
          expr = `r.m_${c.from}`;
      }
      return this.#key.includes(c) ? keyExpr(c, expr) : `CAST(${expr} AS ${castType(c.type)})`;
    });
    const names = columns.map((c) => quoteIdentifier(c.name));
    const keyNames = this.#key.map((c) => quoteIdentifier(c.name));
    const updates = columns
      .filter((c) => !this.#key.includes(c))
      .map((c) => `${quoteIdentifier(c.name)} = EXCLUDED.${quoteIdentifier(c.name)}`);
    const insert = `INSERT INTO ${quoteTable(this.table)} AS t (${names.join(', ')})`;
    const rows = `ROWS FROM (${functions.join(', ')})`;
    if (this.#append) {
      return { text: `${insert} SELECT ${selectList.join(', ')} FROM ${rows} AS r(${aliases.join(', ')})`, params };
    }
    const onConflict = `ON CONFLICT (${keyNames.join(', ')}) DO ` + (updates.length ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING');
    if (this.#eachRecordItsOwnRow || this.#keyEqualityIsBytes) {
      // No two records of the batch share a key: the offset is part of it, or JavaScript reduced on bytes, which
      // for these key types is PostgreSQL's equality. Tombstones then go in a DELETE of their own (buildDelete).
      return { text: `${insert} SELECT ${selectList.join(', ')} FROM ${rows} AS r(${aliases.join(', ')}) ${onConflict}`, params };
    }
    // PostgreSQL reduces: the last record per key by its own equality (ties of a versioned route: the newest version
    // first, then the later record) decides whether the key is written or, a tombstone, deleted. Only the key (and
    // version) of each record is compared; values are cast for the rows that are written. Tombstones carry their
    // keys alone. Delete and insert touch different keys, so one statement runs both. A versioned route's stored
    // row only gives way to a version that is not older, and a record without a version never replaces one.
    const version = this.#version ? quoteIdentifier(this.#version.name) : undefined;
    const selected = selectList.map((e, i) => `${e} AS ${names[i]}`);
    const values =
      `sluice$values AS (SELECT ${selected.join(', ')}, r.sluice$pos ` +
      `FROM ROWS FROM (${[...functions, `unnest(${param('position')}::int[])`].join(', ')}) AS r(${[...aliases, 'sluice$pos'].join(', ')}))`;
    const candidates = [`SELECT ${[...keyNames, ...(version ? [version] : []), 'sluice$pos', 'false AS sluice$tombstone'].join(', ')} FROM sluice$values`];
    if (this.#deletes) {
      const tombstoneArrays: Array<[ParamKind, string, string]> = [];
      // Key fields of rows that change events delete: read from their rows, as the written rows' are; fields of the
      // Kafka key, from the tombstones' keys.
      const keyFields = new Map<string, string>();
      const kafkaKeyFields = new Map<string, string>();
      for (const c of this.#key) {
        if (c.from === 'field' && !keyFields.has(c.field)) keyFields.set(c.field, `t${keyFields.size}`);
        if (c.from === 'keyField' && !kafkaKeyFields.has(c.field)) kafkaKeyFields.set(c.field, `tk${kafkaKeyFields.size}`);
      }
      const keys = this.#key.map((c) => {
        let expr: string;
        if (c.from === 'topic') expr = `${param('topic')}::text`;
        else if (c.from === 'partition') expr = `${param('partition')}::int`;
        else if (c.from === 'field') expr = `u.${keyFields.get(c.field)!}`;
        else if (c.from === 'keyField') expr = `u.${kafkaKeyFields.get(c.field)!}`;
        else {
          const [kind, type]: [ParamKind, string] =
            c.from === 'keyHash' ? ['tombstoneKeyHash', 'bytea'] : keyKind(c) === 'keyBytes' ? ['tombstoneKeyBytes', 'bytea'] : ['tombstoneKey', 'text'];
          if (!tombstoneArrays.some(([k]) => k === kind)) tombstoneArrays.push([kind, type, `k${tombstoneArrays.length}`]);
          expr = `u.${tombstoneArrays.find(([k]) => k === kind)![2]}`;
        }
        return keyExpr(c, expr);
      });
      const functions = tombstoneArrays.map(([kind, type]) => `unnest(${param(kind)}::${type}[])`);
      const aliases = tombstoneArrays.map(([, , alias]) => alias);
      for (const [from, fields, kind] of [['field', keyFields, 'tombstoneJson'], ['keyField', kafkaKeyFields, 'tombstoneKeyJson']] as const) {
        if (fields.size === 0) continue;
        const definitions = [...fields].map(([field]) => `${quoteIdentifier(field)} ${castType(this.#key.find((c) => c.from === from && c.field === field)!.type)}`);
        functions.push(`json_to_recordset(${param(kind)}::json) AS (${definitions.join(', ')})`);
        aliases.push(...fields.values());
      }
      functions.push(`unnest(${param('tombstonePosition')}::int[])`);
      aliases.push('sluice$pos');
      candidates.push(`SELECT ${[...keys, 'u.sluice$pos', 'true'].join(', ')} FROM ROWS FROM (${functions.join(', ')}) AS u(${aliases.join(', ')})`);
    }
    const order = [...keyNames, ...(version ? [`${version} DESC NULLS LAST`] : []), 'sluice$pos DESC'];
    const last =
      `sluice$last AS (SELECT DISTINCT ON (${keyNames.join(', ')}) ${[...keyNames, 'sluice$pos', 'sluice$tombstone'].join(', ')} ` +
      `FROM (${candidates.join(' UNION ALL ')}) AS a ORDER BY ${order.join(', ')})`;
    const same = keyNames.map((k) => `d.${k} = b.${k}`).join(' AND ');
    const deleted =
      this.#deletes
        ? `, sluice$deleted AS (DELETE FROM ${quoteTable(this.table)} AS d USING sluice$last AS b WHERE b.sluice$tombstone AND ${same})`
        : '';
    const written =
      `sluice$written AS (${insert} SELECT ${names.map((n) => `v.${n}`).join(', ')} FROM sluice$values AS v ` +
      `JOIN sluice$last AS l ON l.sluice$pos = v.sluice$pos AND NOT l.sluice$tombstone ${onConflict}` +
      (version ? ` WHERE EXCLUDED.${version} >= t.${version} OR t.${version} IS NULL` : '') +
      ' RETURNING 1)';
    const text =
      `WITH ${values}, ${last}${deleted}, ${written} ` +
      'SELECT (SELECT count(*) FROM sluice$last WHERE NOT sluice$tombstone)::int AS kept, ' +
      '(SELECT count(*) FROM sluice$last WHERE sluice$tombstone)::int AS deleted, ' +
      '(SELECT count(*) FROM sluice$written)::int AS written';
    return { text, params };
  }

  /** Tombstones of a route whose key equality is byte equality: one DELETE by their keys. */
  #buildDelete(): { text: string; params: ParamKind[] } {
    // Tombstone deletes are only allowed (config check) when every key column comes from what a record without a
    // value still has: the Kafka key (or its hash), the topic, the partition.
    const params: ParamKind[] = [];
    const param = (kind: ParamKind) => `$${(params.includes(kind) ? params.indexOf(kind) : params.push(kind) - 1) + 1}`;
    const arrays: ArrayKind[] = [];
    const conditions = this.#key.map((c) => {
      let source: string;
      if (c.from === 'topic') source = `${param('topic')}::text`;
      else if (c.from === 'partition') source = `${param('partition')}::int`;
      else {
        const kind: ArrayKind = c.from === 'keyHash' ? 'keyHash' : keyKind(c);
        if (!arrays.includes(kind)) arrays.push(kind);
        source = `u.${kind}`;
      }
      return `d.${quoteIdentifier(c.name)} = ${keyExpr(c, source)}`;
    });
    const types = new Map<ArrayKind, string>(arrayKinds);
    const using = arrays.length
      ? ` USING ROWS FROM (${arrays.map((kind) => `unnest(${param(kind)}::${types.get(kind)}[])`).join(', ')}) AS u(${arrays.join(', ')})`
      : '';
    return { text: `DELETE FROM ${quoteTable(this.table)} AS d${using} WHERE ${conditions.join(' AND ')}`, params };
  }

  /**
   * Turns a batch (one partition, offset order) into this route's statements. A record the route cannot write is
   * left out and returned in `rejected`; the others are written as if it were not there.
   */
  prepare(records: readonly SourceRecord[]): PreparedWrite {
    if (this.#transform) return this.#prepareTransformed(records);
    const n = records.length;
    const row: RecordParts = {
      spans: new Array<[number, number] | undefined>(n),
      keySpans: new Array<[number, number] | undefined>(n),
      texts: new Array<string | null>(n).fill(null),
      keyHashes: new Array<Buffer | undefined>(n),
    };
    // reduction key → index of the last record with that key (a value, or a tombstone that deletes)
    const latest = new Map<string, number>();
    const rejected: RejectedRecord[] = [];
    let skipped = 0;
    for (let i = 0; i < n; i++) {
      const record = records[i]!;
      let key: string | undefined;
      try {
        key = this.#prepareOne(record, i, row);
      } catch (error) {
        if (!(error instanceof PoisonRecordError)) throw error;
        rejected.push({ record, error });
        continue;
      }
      if (key === undefined) {
        skipped++;
        continue;
      }
      // Deleted and set again, so that the map keeps the survivors in offset order.
      if (latest.delete(key)) skipped++;
      latest.set(key, i);
    }
    if (latest.size === 0) return { statements: [], upserted: 0, deleted: 0, skipped, rejected };
    const chosen = [...latest.values()];
    const tombstones = chosen.filter((i) => deletesRow(records[i]!));
    const values = chosen.filter((i) => !deletesRow(records[i]!));
    const statements: PlannedStatement[] = [];
    if (this.#reduces) {
      // One statement: PostgreSQL's reduction decides, per key, between the values and the tombstones.
      statements.push({
        name: `${this.#statementId}-upsert`,
        text: this.#upsertSql,
        table: this.table,
        operation: 'INSERT',
        rows: values.length + tombstones.length,
        reduced: { values: values.length, tombstones: tombstones.length, versioned: this.#version !== undefined },
        values: this.#values(this.#params, records, row, values, tombstones),
      });
    } else {
      // Byte equality is the key's equality: a key is either deleted or written, in statements of their own.
      if (tombstones.length > 0) {
        statements.push({
          name: `${this.#statementId}-delete`,
          text: this.#delete!.text,
          table: this.table,
          operation: 'DELETE',
          rows: tombstones.length,
          values: this.#values(this.#delete!.params, records, row, tombstones),
        });
      }
      if (values.length > 0) {
        statements.push({
          name: `${this.#statementId}-upsert`,
          text: this.#upsertSql,
          table: this.table,
          operation: 'INSERT',
          rows: values.length,
          values: this.#values(this.#params, records, row, values),
        });
      }
    }
    return { statements, upserted: values.length, deleted: tombstones.length, skipped, rejected };
  }

  /** The parameters of a statement over the chosen records and tombstones, in the order its SQL numbers them. */
  #values(params: ParamKind[], records: readonly SourceRecord[], row: RecordParts, chosen: number[], tombstones: number[] = []): unknown[] {
    /** One per-record array over `at` (a tombstone parameter is its base kind over the tombstones). */
    const perRecord = (kind: ArrayKind | 'position', at: number[]): unknown[] | Buffer => {
      switch (kind) {
        case 'value':
          return at.map((i) => row.texts[i]);
        case 'key':
          // Checked as text in #prepareOne: the bytes are the text.
          return binaryArray(textOid, at.map((i) => records[i]!.key));
        case 'keyBytes':
          return binaryArray(byteaOid, at.map((i) => records[i]!.key));
        case 'keyHash':
          return binaryArray(byteaOid, at.map((i) => row.keyHashes[i]));
        case 'offset':
          return at.map((i) => records[i]!.offset);
        case 'timestamp':
          return at.map((i) => records[i]!.timestamp);
        case 'position':
          return at;
      }
    };
    return params.map((kind) => {
      switch (kind) {
        case 'json':
          return jsonArray(records, 'value', row.spans, chosen);
        case 'keyJson':
          return jsonArray(records, 'key', row.keySpans, chosen);
        case 'tombstoneKeyJson':
          return jsonArray(records, 'key', row.keySpans, tombstones);
        case 'topic':
          return this.topic;
        case 'partition':
          return records[0]!.partition;
        case 'tombstoneKey':
          return perRecord('key', tombstones);
        case 'tombstoneKeyBytes':
          return perRecord('keyBytes', tombstones);
        case 'tombstoneKeyHash':
          return perRecord('keyHash', tombstones);
        case 'tombstonePosition':
          return perRecord('position', tombstones);
        case 'tombstoneJson':
          return jsonArray(records, 'value', row.spans, tombstones);
        default:
          return perRecord(kind, chosen);
      }
    });
  }


  /**
   * One record's part of `prepare`: its key for the reduction, or undefined when it writes nothing (a tombstone the
   * route ignores, or one without a key where the key is its hash: a keyless record's own row, never written).
   * Throws PoisonRecordError.
   */
  #prepareOne(record: SourceRecord, i: number, row: RecordParts): string | undefined {
    if (record.sizeBytes > this.#maxRecordBytes) {
      throw new PoisonRecordError(record, `key, value and headers hold ${record.sizeBytes} bytes, over maxRecordBytes=${this.#maxRecordBytes}`);
    }
    const value = record.value;
    if (value === null && (this.#tombstones === 'ignore' || (record.key === null && this.#arrays.keyHash && !this.#keyNeedsKafkaKey))) {
      return undefined;
    }
    if (this.#keyNeedsKafkaKey && record.key === null) {
      throw new PoisonRecordError(
        record,
        value === null
          ? 'a tombstone without a key cannot delete anything'
          : `route ${this.topic} → ${this.table} takes its key from the Kafka key, and the record has none`,
      );
    }
    if (this.#arrays.key && record.key !== null) this.#checkKeyText(record, record.key);
    if (this.#readsKeyFields && record.key !== null) {
      const span = objectSpan(record.key, 0, record.key.length, this.#maxJsonDepth, 'the Kafka key');
      if (typeof span === 'string') throw new PoisonRecordError(record, span);
      row.keySpans[i] = span;
    }
    if (this.#arrays.keyHash) row.keyHashes[i] = keyHash(record);
    if (value !== null) {
      if (this.#sendsJson) row.spans[i] = this.#objectSpan(record, value);
      else {
        // A decoded value may be a part of the bytes (a Connect payload): the stored value is that part.
        const span = checkedObjectSpan(record);
        row.spans[i] = span;
        row.texts[i] = span ? value.toString('utf8', span[0], span[1]) : value.toString('utf8');
      }
    }
    return this.#reductionKey(record, value, row.spans[i], i, row);
  }

  /** A Kafka key bound for a text column goes as exactly its UTF-8 text, or the record is poison (never replaced characters). */
  #checkKeyText(record: SourceRecord, key: Buffer): void {
    if (!isUtf8(key)) {
      throw new PoisonRecordError(
        record,
        `the Kafka key is not valid UTF-8 and route ${this.topic} → ${this.table} stores it as text (map it to a bytea column to keep any bytes)`,
      );
    }
    if (key.includes(0)) {
      throw new PoisonRecordError(
        record,
        `the Kafka key contains a NUL byte, which PostgreSQL text cannot hold (route ${this.topic} → ${this.table}; map it to a bytea column to keep any bytes)`,
      );
    }
  }

  /**
   * The key a record is reduced by within the batch: the exact bytes of each key column's source, so that two
   * records meet here only if PostgreSQL could not tell their keys apart either. Topic and partition are the same
   * for the whole batch. Throws PoisonRecordError for a key field that is missing or null.
   */
  #reductionKey(record: SourceRecord, value: Buffer | null, span: [number, number] | undefined, i: number, row: RecordParts): string {
    if (this.#dedupeNone) return String(i);
    let out = '';
    for (const { column, field } of this.#reductionParts) {
      let part: string;
      switch (column.from) {
        case 'field':
        case 'keyField': {
          // A field of the value, or of the Kafka key read as JSON.
          const ofValue = column.from === 'field';
          const bytes = ofValue ? value! : record.key!;
          const at = memberSpan(bytes, ofValue ? span! : row.keySpans[i]!, field!);
          if (!at || isNullLiteral(bytes, at)) {
            const of = ofValue ? '' : ' of the Kafka key';
            throw new PoisonRecordError(record, `key field ${column.field}${of} is missing or null (route ${this.topic} → ${this.table})`);
          }
          part = bytes.toString('latin1', at[0], at[1]);
          break;
        }
        case 'key':
          part = record.key!.toString('latin1');
          break;
        case 'keyHash':
          part = row.keyHashes[i]!.toString('latin1');
          break;
        case 'value':
          part = span ? value!.toString('latin1', span[0], span[1]) : value!.toString('latin1');
          break;
        case 'timestamp':
          part = record.timestamp;
          break;
        default:
          continue;
      }
      out += `${part.length}:${part}`;
    }
    return out;
  }

  /**
   * After PostgreSQL rejected a batch with a data error: the records whose JSON does not parse. JSON is parsed by
   * the server in the normal case; this slow path finds malformed values in one pass, before any bisection.
   */
  findMalformed(records: readonly SourceRecord[]): RejectedRecord[] {
    const malformed: RejectedRecord[] = [];
    if (this.#transform || !this.#sendsJson) return malformed;
    for (const record of records) {
      if (record.value === null) continue;
      try {
        parseObject(record, record.value, this.#objectSpan(record, record.value));
      } catch (error) {
        if (!(error instanceof PoisonRecordError)) throw error;
        malformed.push({ record, error });
      }
    }
    return malformed;
  }

  /** Where the record's JSON object is: as a decoder checked it, or the whole value, spaces around it left out. */
  #objectSpan(record: SourceRecord, value: Buffer): [number, number] {
    const checked = checkedObjectSpan(record);
    if (checked) return checked;
    const span = objectSpan(value, 0, value.length, this.#maxJsonDepth);
    if (typeof span === 'string') throw new PoisonRecordError(record, span);
    return span;
  }

  #prepareTransformed(records: readonly SourceRecord[]): PreparedWrite {
    /** dedupe key → the row's JSON text and the columns it writes */
    const rows = new Map<string, { text: string; signature: string }>();
    const rejected: RejectedRecord[] = [];
    let skipped = 0;
    for (const record of records) {
      let recordRows: Array<[string, string, string]> | null;
      try {
        recordRows = this.#transformOne(record);
      } catch (error) {
        if (!(error instanceof PoisonRecordError)) throw error;
        rejected.push({ record, error });
        continue;
      }
      if (recordRows === null) {
        skipped++;
        continue;
      }
      for (const [rowKey, text, signature] of recordRows) {
        // Append: every row is its own; otherwise the last row per key wins.
        const key = this.#append ? String(rows.size) : rowKey;
        if (rows.has(key)) {
          rows.delete(key);
          skipped++;
        }
        rows.set(key, { text, signature });
      }
    }
    // One statement per set of columns the rows write (one, unless the transform returns rows of several shapes).
    const groups = new Map<string, string[]>();
    for (const { text, signature } of rows.values()) {
      const group = groups.get(signature);
      if (group) group.push(text);
      else groups.set(signature, [text]);
    }
    const statements: PlannedStatement[] = [...groups].map(([signature, texts]) => {
      const upsert = this.#upsertFor(signature);
      return {
        name: upsert.name,
        text: upsert.text,
        table: this.table,
        operation: 'INSERT' as const,
        rows: texts.length,
        ...(this.#reduces ? { reduced: { values: texts.length, tombstones: 0, versioned: false } } : {}),
        values: upsert.params.map((kind) => (kind === 'position' ? texts.map((_, i) => i) : `[${texts.join(',')}]`)),
      };
    });
    return { statements, upserted: rows.size, deleted: 0, skipped, rejected };
  }

  /** The upsert for rows that write the columns `signature` names (columnsFromRows), or the route's own. */
  #upsertFor(signature: string): { name: string; text: string; params: ParamKind[] } {
    if (!this.#upsertsByColumns) return { name: `${this.#statementId}-upsert`, text: this.#upsertSql, params: this.#params };
    let upsert = this.#upsertsByColumns.get(signature);
    // Rows of many shapes (optional fields left out): past a few dozen prepared statements per route, further shapes
    // are sent unprepared (no name), built each time, rather than fill every connection with prepared statements.
    if (!upsert && this.#upsertsByColumns.size >= maxRowShapes) {
      const names = new Set(signature.split('\u0000'));
      return { name: '', ...this.#buildUpsert(this.#columns.filter((c) => names.has(c.name))) };
    }
    if (!upsert) {
      const names = new Set(signature.split('\u0000'));
      const built = this.#buildUpsert(this.#columns.filter((c) => names.has(c.name)));
      upsert = { name: `${this.#statementId}-upsert-${this.#upsertsByColumns.size}`, ...built };
      this.#upsertsByColumns.set(signature, upsert);
    }
    return upsert;
  }

  /** A record's rows as (dedupe key, JSON text) pairs, or null when the transform skips it. Throws PoisonRecordError. */
  #transformOne(record: SourceRecord): Array<[string, string, string]> | null {
    if (record.sizeBytes > this.#maxRecordBytes) {
      throw new PoisonRecordError(record, `key, value and headers hold ${record.sizeBytes} bytes, over maxRecordBytes=${this.#maxRecordBytes}`);
    }
    let result: Row | Row[] | null;
    try {
      result = this.#transform!(record);
    } catch (error) {
      throw new PoisonRecordError(record, `transform threw: ${errorMessage(error)}`, error);
    }
    if (result === null || result === undefined) return null;
    const out: Array<[string, string, string]> = [];
    for (const row of Array.isArray(result) ? result : [result]) {
      if (row === null || typeof row !== 'object') throw new PoisonRecordError(record, 'transform returned a row that is not an object');
      let signature = '';
      if (this.#upsertsByColumns) {
        // The columns this row writes: the table's columns it has (JSON leaves out undefined; other properties are
        // not columns, and are ignored as json_to_recordset ignores them).
        const names = Object.keys(row)
          .filter((name) => row[name] !== undefined && this.#columns.some((c) => c.name === name))
          .sort();
        if (names.length === 0) throw new PoisonRecordError(record, `transform returned a row with no column of table ${this.table}`);
        signature = names.join('\u0000');
      }
      let key = '';
      for (const c of this.#key) {
        const part = row[c.name];
        if (part === null || part === undefined) {
          throw new PoisonRecordError(record, `transform returned a row without key column ${c.name}`);
        }
        // Exact JSON text, as for mapped routes: 1 and "1" are two keys here, and PostgreSQL settles the rest.
        const text = typeof part === 'bigint' ? part.toString() : JSON.stringify(part);
        key += `${text.length}:${text}`;
      }
      try {
        out.push([key, JSON.stringify(row), signature]);
      } catch (error) {
        throw new PoisonRecordError(record, `transform returned a row that cannot be serialised: ${errorMessage(error)}`, error);
      }
    }
    return out;
  }
}

/** Whether the record deletes its key's row: a Kafka tombstone, or a change event that deletes (its value is the row). */
const deletesRow = (record: SourceRecord): boolean => record.value === null || isDeletion(record);

/** Per-record values of one batch that `prepare` computes once and the statements' parameters read. */
interface RecordParts {
  spans: Array<[number, number] | undefined>;
  /** Where each Kafka key's JSON object is, for `keyField` columns. */
  keySpans: Array<[number, number] | undefined>;
  texts: Array<string | null>;
  keyHashes: Array<Buffer | undefined>;
}

/**
 * `from: keyHash`: SHA-256 of the Kafka key, or, for a record without one, of its partition and offset (a leading
 * byte keeps the two apart). A fixed 32 bytes that any btree index takes, equal for every record with the same
 * Kafka key, and its own row for each record without a key.
 */
function keyHash(record: SourceRecord): Buffer {
  const hash = createHash('sha256');
  if (record.key !== null) hash.update(keyedPrefix).update(record.key);
  else hash.update(keylessPrefix).update(`${record.partition}:${record.offset}`);
  return hash.digest();
}
/** Upserts prepared per route for the shapes of rows a transform without `columns` returns; more go unprepared. */
const maxRowShapes = 32;

const keyedPrefix = Buffer.from([1]);
const keylessPrefix = Buffer.from([0]);

const nullLiteral = Buffer.from('null');
function isNullLiteral(value: Buffer, [start, end]: [number, number]): boolean {
  return end - start === 4 && value.compare(nullLiteral, 0, 4, start, end) === 0;
}

/** Parses a record's object, to find the one PostgreSQL could not parse (findMalformed). */
function parseObject(record: SourceRecord, value: Buffer, span: [number, number]): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8', span[0], span[1]));
  } catch (error) {
    throw new PoisonRecordError(record, `value is not valid JSON: ${errorMessage(error)}`, error);
  }
  if (!isObject(parsed)) throw new PoisonRecordError(record, 'value is not a JSON object');
  return parsed;
}

/**
 * The chosen records' objects joined into one JSON array, as a binary json parameter (whose binary form is the
 * UTF-8 text itself). The bytes go from the Kafka records to the socket without becoming JavaScript strings. A
 * tombstone (no span) stands as `{}`: its row only carries the key and the tombstone flag.
 */
function jsonArray(records: readonly SourceRecord[], part: 'key' | 'value', spans: ReadonlyArray<[number, number] | undefined>, chosen: number[]): Buffer {
  let length = 2 + Math.max(chosen.length - 1, 0); // two brackets and the commas between records
  for (const i of chosen) {
    const span = spans[i];
    length += span ? span[1] - span[0] : emptyObject.length;
  }
  const out = Buffer.allocUnsafe(length);
  out[0] = 0x5b;
  let at = 1;
  for (let k = 0; k < chosen.length; k++) {
    const i = chosen[k]!;
    if (k > 0) out[at++] = 0x2c;
    const span = spans[i];
    at += span ? records[i]![part]!.copy(out, at, span[0], span[1]) : emptyObject.copy(out, at);
  }
  out[at++] = 0x5d;
  return out;
}
const emptyObject = Buffer.from('{}');

const textOid = 25;
const byteaOid = 17;

/**
 * A one-dimensional array parameter in PostgreSQL's binary format (array_recv): each element's bytes as they are,
 * with no quoting or escaping, and no JavaScript string per element. Text elements must be valid UTF-8 without NUL.
 */
function binaryArray(elementOid: number, elements: ReadonlyArray<Buffer | null | undefined>): Buffer {
  if (elements.length === 0) {
    const empty = Buffer.alloc(12); // no dimensions, no nulls
    empty.writeUInt32BE(elementOid, 8);
    return empty;
  }
  let length = 20;
  let hasNull = 0;
  for (const element of elements) {
    length += 4 + (element ? element.length : 0);
    if (!element) hasNull = 1;
  }
  const out = Buffer.allocUnsafe(length);
  out.writeInt32BE(1, 0); // dimensions
  out.writeInt32BE(hasNull, 4);
  out.writeUInt32BE(elementOid, 8);
  out.writeInt32BE(elements.length, 12);
  out.writeInt32BE(1, 16); // lower bound
  let at = 20;
  for (const element of elements) {
    if (!element) {
      at = out.writeInt32BE(-1, at);
      continue;
    }
    at = out.writeInt32BE(element.length, at);
    at += element.copy(out, at);
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
