import {
  tombstoneKeySources,
  type ColumnSource,
  type RecordTransform,
  type Row,
  type TombstonePolicy,
  type ValueFormat,
  type WriteMode,
} from '../config/route-options.js';
import { PoisonRecordError, SchemaError, errorMessage } from '../errors.js';
import type { SourceRecord } from '../record.js';
import { ConnectEnvelopeReader, objectSpan } from './json-span.js';
import { quoteIdentifier, quoteTable } from './sql-identifiers.js';

export interface PlannedColumn {
  name: string;
  from: ColumnSource;
  /** JSON field, for `from: field`. */
  field: string;
  /** PostgreSQL type the value is cast to. */
  type: string;
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
  /** Defaults to `json`. */
  format?: ValueFormat;
  transform: RecordTransform | undefined;
  /** A record whose key plus value is larger is poison. */
  maxRecordBytes?: number;
  /** A JSON value nesting objects and arrays deeper than this is poison. */
  maxJsonDepth?: number;
}

/** One statement and its parameters. */
export interface PlannedStatement {
  name: string;
  text: string;
  values: unknown[];
  /** A versioned upsert of `sent` records: those its row count (inserted or replaced rows) leaves out are stale. */
  versioned?: { sent: number };
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

type ParamKind = 'json' | Exclude<ColumnSource, 'field'>;

const timestampTypes = /^(timestamp|timestamptz|date)/;

/**
 * A route compiled against its table: fixed SQL text whose parameter count does not grow with the batch, and the
 * per-batch work that turns records into those parameters. Records are reduced to the last one per key (by offset)
 * before they reach PostgreSQL, so `ON CONFLICT DO UPDATE` never meets the same row twice in one statement.
 *
 * The batch travels as arrays: JSON values joined into one json array read by `json_to_recordset`, Kafka
 * metadata as `unnest` arrays, zipped row by row by `ROWS FROM`. JSON values are parsed in JavaScript only where
 * sluice needs a field (key or dedupe) or a transform; otherwise PostgreSQL parses them.
 */
export class RoutePlan {
  readonly topic: string;
  readonly table: string;
  readonly #columns: PlannedColumn[];
  readonly #key: PlannedColumn[];
  readonly #tombstones: TombstonePolicy;
  readonly #transform: RecordTransform | undefined;
  readonly #envelope: ConnectEnvelopeReader | undefined;
  /** Values travel as one json array (fields or a Connect payload are read from it), not as text. */
  readonly #sendsJson: boolean;
  readonly #hasFields: boolean;
  readonly #needs: Record<Exclude<ColumnSource, 'field'>, boolean>;
  /** Key columns are all constant within a batch or come from the Kafka key: dedupe on the Kafka key alone. */
  readonly #dedupeOnKafkaKey: boolean;
  /** A key column is the Kafka key: a record without one cannot be written. */
  readonly #keyNeedsKafkaKey: boolean;
  /** Whether the Kafka key is decoded at all: not for routes that neither store, dedupe on, nor delete by it. */
  readonly #readsKafkaKey: boolean;
  /** A key column is the offset: every record is its own row, nothing to reduce. */
  readonly #dedupeNone: boolean;
  readonly #append: boolean;
  readonly #version: PlannedColumn | undefined;
  readonly #upsertSql: string;
  readonly #delete: { text: string; params: ParamKind[] } | undefined;
  readonly #params: ParamKind[];
  readonly #statementId: string;
  readonly #maxRecordBytes: number;
  readonly #maxJsonDepth: number;

  constructor(input: RoutePlanInput, statementId: string) {
    this.topic = input.topic;
    this.table = input.table;
    this.#statementId = statementId;
    this.#columns = input.columns;
    this.#tombstones = input.tombstones;
    this.#transform = input.transform;
    const format = input.format ?? 'json';
    this.#maxRecordBytes = input.maxRecordBytes ?? Infinity;
    this.#maxJsonDepth = input.maxJsonDepth ?? Infinity;
    this.#envelope = format === 'connect-json' ? new ConnectEnvelopeReader(this.#maxJsonDepth) : undefined;
    this.#key = input.key.map((name) => {
      const column = input.columns.find((c) => c.name === name);
      if (!column) throw new SchemaError(input.table, `route ${input.topic} → ${input.table}: key column ${name} is not mapped`);
      return column;
    });
    const uses = (from: ColumnSource) => input.columns.some((c) => c.from === from);
    this.#hasFields = uses('field');
    this.#needs = {
      key: uses('key'),
      value: uses('value'),
      topic: uses('topic'),
      partition: uses('partition'),
      offset: uses('offset'),
      timestamp: uses('timestamp'),
    };
    this.#append = input.mode === 'append';
    this.#version = input.version === undefined ? undefined : input.columns.find((c) => c.name === input.version);
    if (input.version !== undefined && !this.#version) {
      throw new SchemaError(input.table, `route ${input.topic} → ${input.table}: version column ${input.version} is not mapped`);
    }
    // Append: every record is its own row. Versioned: PostgreSQL keeps the newest record per key (DISTINCT ON), so
    // all records are sent. Otherwise the offset as key also makes every record its own row.
    this.#dedupeNone = this.#append || this.#version !== undefined || this.#key.some((c) => c.from === 'offset');
    this.#keyNeedsKafkaKey = this.#key.some((c) => c.from === 'key');
    this.#dedupeOnKafkaKey = !this.#dedupeNone && this.#key.every((c) => tombstoneKeySources.includes(c.from));
    this.#sendsJson = this.#hasFields || (this.#needs.value && format !== 'json');
    this.#readsKafkaKey = this.#needs.key || this.#dedupeOnKafkaKey || this.#tombstones === 'delete';
    const built = this.#buildUpsert();
    this.#upsertSql = built.text;
    this.#params = built.params;
    this.#delete = this.#tombstones === 'delete' ? this.#buildDelete() : undefined;
  }

  get upsertSql(): string {
    return this.#upsertSql;
  }

  #buildUpsert(): { text: string; params: ParamKind[] } {
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
    if (this.#hasFields) {
      const fields = new Map<string, string>();
      for (const c of this.#columns) if (c.from === 'field' && !fields.has(c.field)) fields.set(c.field, c.type);
      const definitions = [...fields].map(([field, type]) => `${quoteIdentifier(field)} ${type}`);
      functions.push(`json_to_recordset(${json()}) AS (${definitions.join(', ')})`);
      const fieldAlias = new Map([...fields.keys()].map((field, i) => [field, `f${i}`]));
      aliases.push(...fieldAlias.values());
      for (const c of this.#columns) if (c.from === 'field') columnExpr.set(c.name, `r.${fieldAlias.get(c.field)!}`);
    }
    for (const kind of ['value', 'key', 'offset', 'timestamp'] as const) {
      if (!this.#needs[kind]) continue;
      const fn =
        kind === 'value'
          ? this.#sendsJson
            ? `json_array_elements(${json()})`
            : `unnest(${param('value')}::text[])`
          : kind === 'key'
            ? `unnest(${param('key')}::text[])`
            : kind === 'offset'
              ? `unnest(${param('offset')}::bigint[])`
              : `unnest(${param('timestamp')}::bigint[])`;
      functions.push(fn);
      aliases.push(`m_${kind}`);
    }
    const selectList = this.#columns.map((c) => {
      let expr: string;
      switch (c.from) {
        case 'field':
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
        default:
          expr = `r.m_${c.from}`;
      }
      return `CAST(${expr} AS ${c.type})`;
    });
    const names = this.#columns.map((c) => quoteIdentifier(c.name));
    const keyNames = this.#key.map((c) => quoteIdentifier(c.name));
    const updates = this.#columns
      .filter((c) => !this.#key.includes(c))
      .map((c) => `${quoteIdentifier(c.name)} = EXCLUDED.${quoteIdentifier(c.name)}`);
    const insert = `INSERT INTO ${quoteTable(this.table)} AS t (${names.join(', ')})`;
    const rows = `ROWS FROM (${functions.join(', ')})`;
    if (this.#append) {
      return { text: `${insert} SELECT ${selectList.join(', ')} FROM ${rows} AS r(${aliases.join(', ')})`, params };
    }
    const onConflict = `ON CONFLICT (${keyNames.join(', ')}) DO ` + (updates.length ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING');
    if (!this.#version) {
      return { text: `${insert} SELECT ${selectList.join(', ')} FROM ${rows} AS r(${aliases.join(', ')}) ${onConflict}`, params };
    }
    // Versioned: the newest record per key (ties: the later offset), and a stored row only gives way to a version
    // that is not older. A record without a version never replaces a stored row.
    const version = quoteIdentifier(this.#version.name);
    const text =
      `${insert} SELECT DISTINCT ON (${keyNames.join(', ')}) ${selectList.map((e, i) => `${e} AS ${names[i]}`).join(', ')} ` +
      `FROM ${rows} WITH ORDINALITY AS r(${aliases.join(', ')}, sluice_ord) ` +
      `ORDER BY ${keyNames.join(', ')}, ${version} DESC NULLS LAST, r.sluice_ord DESC ` +
      `${onConflict} WHERE EXCLUDED.${version} >= t.${version} OR t.${version} IS NULL`;
    return { text, params };
  }

  #buildDelete(): { text: string; params: ParamKind[] } {
    // Tombstone deletes are only allowed (config check) when every key column comes from the Kafka key,
    // the topic or the partition: the three things a record without a value still has.
    const params: ParamKind[] = ['key'];
    const param = (kind: ParamKind) => `$${(params.includes(kind) ? params.indexOf(kind) : params.push(kind) - 1) + 1}`;
    const conditions = this.#key.map((c) => {
      const source = c.from === 'key' ? 'u.k' : c.from === 'topic' ? `${param('topic')}::text` : `${param('partition')}::int`;
      return `d.${quoteIdentifier(c.name)} = CAST(${source} AS ${c.type})`;
    });
    const text = `DELETE FROM ${quoteTable(this.table)} AS d USING unnest($1::text[]) AS u(k) WHERE ${conditions.join(' AND ')}`;
    return { text, params };
  }

  /**
   * Turns a batch (one partition, offset order) into this route's statements. A record the route cannot write is
   * left out and returned in `rejected`; the others are written as if it were not there.
   */
  prepare(records: readonly SourceRecord[]): PreparedWrite {
    if (this.#transform) return this.#prepareTransformed(records);
    const n = records.length;
    const spans = new Array<[number, number] | undefined>(n);
    const texts = new Array<string | null>(n);
    const keys = new Array<string | null>(n);
    // dedupe key → index of the last record with that key; tombstones → its Kafka key
    const upserts = new Map<string, number>();
    const deletes = new Map<string, string>();
    const rejected: RejectedRecord[] = [];
    let skipped = 0;
    for (let i = 0; i < n; i++) {
      const record = records[i]!;
      try {
        skipped += this.#prepareOne(record, i, spans, texts, keys, upserts, deletes);
      } catch (error) {
        if (!(error instanceof PoisonRecordError)) throw error;
        rejected.push({ record, error });
      }
    }
    const statements: PlannedStatement[] = [];
    if (deletes.size > 0) {
      const { text, params } = this.#delete!;
      const keys = [...deletes.values()];
      const partition = records[0]!.partition;
      statements.push({
        name: `${this.#statementId}-delete`,
        text,
        values: params.map((kind) => (kind === 'key' ? keys : kind === 'topic' ? this.topic : partition)),
      });
    }
    if (upserts.size > 0) {
      const chosen = [...upserts.values()];
      statements.push({
        name: `${this.#statementId}-upsert`,
        text: this.#upsertSql,
        ...(this.#version ? { versioned: { sent: chosen.length } } : {}),
        values: this.#params.map((kind) => {
          switch (kind) {
            case 'json':
              return jsonArray(records, spans, chosen);
            case 'value':
              return chosen.map((i) => texts[i]);
            case 'key':
              return chosen.map((i) => keys[i]);
            case 'offset':
              return chosen.map((i) => records[i]!.offset);
            case 'timestamp':
              return chosen.map((i) => records[i]!.timestamp);
            case 'topic':
              return this.topic;
            case 'partition':
              return records[0]!.partition;
          }
        }),
      });
    }
    return { statements, upserted: upserts.size, deleted: deletes.size, skipped, rejected };
  }

  /** One record's part of `prepare`; returns how many records it skipped (0 or 1). Throws PoisonRecordError. */
  #prepareOne(
    record: SourceRecord,
    i: number,
    spans: Array<[number, number] | undefined>,
    texts: Array<string | null>,
    keys: Array<string | null>,
    upserts: Map<string, number>,
    deletes: Map<string, string>,
  ): number {
    if (record.sizeBytes > this.#maxRecordBytes) {
      throw new PoisonRecordError(record, `key and value hold ${record.sizeBytes} bytes, over maxRecordBytes=${this.#maxRecordBytes}`);
    }
    const kafkaKey = record.key === null || !this.#readsKafkaKey ? null : record.key.toString('utf8');
    keys[i] = kafkaKey;
    const value = record.value;
    if (value === null) {
      if (this.#tombstones === 'delete') {
        if (kafkaKey === null) throw new PoisonRecordError(record, 'a tombstone without a key cannot delete anything');
        upserts.delete(kafkaKey);
        deletes.set(kafkaKey, kafkaKey);
      }
      return 1;
    }
    if (this.#sendsJson) spans[i] = this.#objectSpan(record, value);
    else texts[i] = value.toString('utf8');
    if (this.#keyNeedsKafkaKey && kafkaKey === null) {
      throw new PoisonRecordError(record, `route ${this.topic} → ${this.table} takes its key from the Kafka key, and the record has none`);
    }
    let dedupeKey: string;
    if (this.#dedupeNone) dedupeKey = String(i);
    else if (this.#dedupeOnKafkaKey) dedupeKey = kafkaKey ?? '';
    else dedupeKey = this.#fieldKey(record, parseObject(record, value, spans[i]!), kafkaKey);
    let skipped = 0;
    if (upserts.has(dedupeKey)) {
      upserts.delete(dedupeKey);
      skipped = 1;
    }
    upserts.set(dedupeKey, i);
    if (this.#tombstones === 'delete') deletes.delete(dedupeKey);
    return skipped;
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

  /** Where the record's JSON object is: the whole value, or a Connect envelope's payload. */
  #objectSpan(record: SourceRecord, value: Buffer): [number, number] {
    if (this.#envelope) {
      const span = this.#envelope.payload(value);
      if (typeof span === 'string') throw new PoisonRecordError(record, span);
      return span;
    }
    const span = objectSpan(value, 0, value.length, this.#maxJsonDepth);
    if (typeof span === 'string') throw new PoisonRecordError(record, span);
    return span;
  }

  #fieldKey(record: SourceRecord, parsed: Record<string, unknown>, kafkaKey: string | null): string {
    let out = '';
    for (const c of this.#key) {
      let part: unknown;
      if (c.from === 'field') part = parsed[c.field];
      else if (c.from === 'key') part = kafkaKey;
      else if (c.from === 'timestamp') part = record.timestamp;
      else continue; // topic, partition: constant within a batch
      if (part === null || part === undefined) {
        throw new PoisonRecordError(record, `key field ${c.field} is missing or null (route ${this.topic} → ${this.table})`);
      }
      out += keyPart(part);
    }
    return out;
  }

  #prepareTransformed(records: readonly SourceRecord[]): PreparedWrite {
    const rows = new Map<string, string>();
    const rejected: RejectedRecord[] = [];
    let skipped = 0;
    for (const record of records) {
      let recordRows: Array<[string, string]> | null;
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
      for (const [rowKey, text] of recordRows) {
        // Append: every row is its own; otherwise the last row per key wins.
        const key = this.#append ? String(rows.size) : rowKey;
        if (rows.has(key)) {
          rows.delete(key);
          skipped++;
        }
        rows.set(key, text);
      }
    }
    if (rows.size === 0) return { statements: [], upserted: 0, deleted: 0, skipped, rejected };
    return {
      statements: [{ name: `${this.#statementId}-upsert`, text: this.#upsertSql, values: [`[${[...rows.values()].join(',')}]`] }],
      upserted: rows.size,
      deleted: 0,
      skipped,
      rejected,
    };
  }

  /** A record's rows as (dedupe key, JSON text) pairs, or null when the transform skips it. Throws PoisonRecordError. */
  #transformOne(record: SourceRecord): Array<[string, string]> | null {
    if (record.sizeBytes > this.#maxRecordBytes) {
      throw new PoisonRecordError(record, `key and value hold ${record.sizeBytes} bytes, over maxRecordBytes=${this.#maxRecordBytes}`);
    }
    let result: Row | Row[] | null;
    try {
      result = this.#transform!(record);
    } catch (error) {
      throw new PoisonRecordError(record, `transform threw: ${errorMessage(error)}`, error);
    }
    if (result === null || result === undefined) return null;
    const out: Array<[string, string]> = [];
    for (const row of Array.isArray(result) ? result : [result]) {
      if (row === null || typeof row !== 'object') throw new PoisonRecordError(record, 'transform returned a row that is not an object');
      let key = '';
      for (const c of this.#key) {
        const part = row[c.name];
        if (part === null || part === undefined) {
          throw new PoisonRecordError(record, `transform returned a row without key column ${c.name}`);
        }
        key += keyPart(part);
      }
      try {
        out.push([key, JSON.stringify(row)]);
      } catch (error) {
        throw new PoisonRecordError(record, `transform returned a row that cannot be serialised: ${errorMessage(error)}`, error);
      }
    }
    return out;
  }
}

/** One key column's contribution to a dedupe key: 1 and "1" meet, as they do once cast by PostgreSQL. */
function keyPart(part: unknown): string {
  return (typeof part === 'object' ? JSON.stringify(part) : String(part)) + '\u0000';
}

/** Parses the record's object where sluice itself needs a field (a key made of JSON fields). */
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
 * UTF-8 text itself). The bytes go from the Kafka records to the socket without becoming JavaScript strings.
 */
function jsonArray(records: readonly SourceRecord[], spans: ReadonlyArray<[number, number] | undefined>, chosen: number[]): Buffer {
  let length = 1 + chosen.length; // two brackets + (records − 1) commas
  for (const i of chosen) {
    const [start, end] = spans[i]!;
    length += end - start;
  }
  const out = Buffer.allocUnsafe(length);
  out[0] = 0x5b;
  let at = 1;
  for (let k = 0; k < chosen.length; k++) {
    const i = chosen[k]!;
    if (k > 0) out[at++] = 0x2c;
    const [start, end] = spans[i]!;
    at += records[i]!.value!.copy(out, at, start, end);
  }
  out[at++] = 0x5d;
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
