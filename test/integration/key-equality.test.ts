import { describe, expect, it } from 'vitest';
import type { RouteOptions } from '../../src/index.js';
import { DlqHeaders } from '../../src/dlq/dlq-headers.js';
import { KafkaHelper, database, uniqueName, waitFor } from '../helpers/stack.js';
import { testSluice } from '../helpers/sluice.js';

/**
 * Records with the same key are reduced before they reach PostgreSQL. The reduction must never merge two records
 * PostgreSQL tells apart (a lost row), nor hand it two rows it considers equal in one statement (SQLSTATE 21000,
 * which would halt sluice). Every case below arrives in one batch, against a real table of the key's type.
 */

interface Case {
  /** What the table is; its first column list is the key. */
  table: string;
  route: Omit<RouteOptions, 'topic' | 'table'>;
  records: Array<{ key: string | Buffer | null; value: string | null; timestamp?: string }>;
  /** The rows expected, as `SELECT <select> FROM table ORDER BY 1`. */
  select: string;
  rows: Array<Record<string, unknown>>;
  /** Offsets that must be in the DLQ, with a reason containing `reason`. */
  dlq?: { offsets: string[]; reason: string };
  /** SQL run after the table is created (`$table` is its name). */
  after?: string;
}

const json = (v: unknown) => JSON.stringify(v);

const cases: Record<string, Case> = {
  // 2^60-ish ids differ in the last digit; as JavaScript numbers they are the same.
  bigintBeyond2pow53: {
    table: '(id bigint PRIMARY KEY, v int NOT NULL)',
    route: { key: ['id'], columns: { id: 'id', v: 'v' } },
    records: [
      { key: null, value: '{"id":1234567890123456789,"v":1}' },
      { key: null, value: '{"id":1234567890123456790,"v":2}' },
    ],
    select: 'id::text AS id, v',
    rows: [
      { id: '1234567890123456789', v: 1 },
      { id: '1234567890123456790', v: 2 },
    ],
  },
  // As text, 1.10 and 1.1 are two keys; as numeric they are one.
  numericTextIntoText: {
    table: '(code text PRIMARY KEY, v int NOT NULL)',
    route: { key: ['code'], columns: { code: 'code', v: 'v' } },
    records: [
      { key: null, value: '{"code":1.10,"v":1}' },
      { key: null, value: '{"code":1.1,"v":2}' },
    ],
    select: 'code, v',
    rows: [
      { code: '1.1', v: 2 },
      { code: '1.10', v: 1 },
    ],
  },
  numericEqualInPostgres: {
    table: '(n numeric PRIMARY KEY, v int NOT NULL)',
    route: { key: ['n'], columns: { n: 'n', v: 'v' } },
    records: [
      { key: null, value: '{"n":1.10,"v":1}' },
      { key: null, value: '{"n":1.1,"v":2}' },
    ],
    select: 'n::text AS n, v',
    rows: [{ n: '1.1', v: 2 }],
  },
  // Kafka keys are bytes: 0xFF and 0xFE are two keys (decoded as UTF-8 both would become U+FFFD), NUL is a byte.
  binaryKafkaKeysIntoBytea: {
    table: '(k bytea PRIMARY KEY, v int NOT NULL)',
    route: { key: ['k'], columns: { k: { from: 'key' }, v: 'v' } },
    records: [
      { key: Buffer.from([0xff]), value: json({ v: 1 }) },
      { key: Buffer.from([0xfe]), value: json({ v: 2 }) },
      { key: Buffer.from([0x00, 0x01, 0x00]), value: json({ v: 3 }) },
      { key: Buffer.from([0xff]), value: json({ v: 4 }) },
    ],
    select: "encode(k, 'hex') AS k, v",
    rows: [
      { k: '000100', v: 3 },
      { k: 'fe', v: 2 },
      { k: 'ff', v: 4 },
    ],
  },
  // Kafka keys go to PostgreSQL as arrays: characters an array literal would have to quote or escape arrive as
  // they were, as text and as bytes, and a key that is the word NULL is not a null.
  keysAnArrayLiteralWouldQuote: {
    table: '(k text PRIMARY KEY, kb bytea NOT NULL, v int NOT NULL)',
    route: { key: ['k'], columns: { k: { from: 'key' }, kb: { from: 'key' }, v: 'v' } },
    records: ['a"b', 'c\\d', '{e,f}', 'NULL', ' g ', '', 'ü€😀'].map((key, v) => ({ key, value: json({ v }) })),
    select: "v, k, kb = convert_to(k, 'UTF8') AS same",
    rows: ['a"b', 'c\\d', '{e,f}', 'NULL', ' g ', '', 'ü€😀'].map((k, v) => ({ v, k, same: true })),
  },
  // A record without a Kafka key, where the key is not the table's: null, in the text and in the bytea column.
  noKafkaKeyIntoNullableColumns: {
    table: '(v int PRIMARY KEY, k text, kb bytea)',
    route: { key: ['v'], columns: { v: 'v', k: { from: 'key' }, kb: { from: 'key' } } },
    records: [
      { key: null, value: json({ v: 1 }) },
      { key: 'x', value: json({ v: 2 }) },
    ],
    select: "v, k, encode(kb, 'hex') AS kb",
    rows: [
      { v: 1, k: null, kb: null },
      { v: 2, k: 'x', kb: '78' },
    ],
  },
  // Bound for a text column, a key that is not UTF-8 is a poison record, never replaced characters.
  invalidUtf8KafkaKeyIntoText: {
    table: '(k text PRIMARY KEY, v int NOT NULL)',
    route: { key: ['k'], columns: { k: { from: 'key' }, v: 'v' } },
    records: [
      { key: Buffer.from([0xff]), value: json({ v: 1 }) },
      { key: Buffer.from([0xfe]), value: json({ v: 2 }) },
      { key: 'ok', value: json({ v: 3 }) },
      { key: Buffer.from([0x61, 0x00]), value: json({ v: 4 }) },
    ],
    select: 'k, v',
    rows: [{ k: 'ok', v: 3 }],
    dlq: { offsets: ['0', '1', '3'], reason: 'Kafka key' },
  },
  // The whole value as the key: three different values are three rows; two PostgreSQL finds equal (jsonb) are one.
  valueAsKey: {
    table: '(body jsonb PRIMARY KEY, part int NOT NULL)',
    route: { key: ['body'], columns: { body: { from: 'value' }, part: { from: 'partition' } } },
    records: [
      { key: null, value: '{"a":1,"b":2}' },
      { key: null, value: '{"a":2}' },
      { key: null, value: '{"a":3}' },
      { key: null, value: '{"b": 2, "a": 1}' },
    ],
    select: 'body::text AS body',
    rows: [{ body: '{"a": 1, "b": 2}' }, { body: '{"a": 2}' }, { body: '{"a": 3}' }],
  },
  // A missing key field is missing, whatever its name: not Object.prototype.constructor.
  missingKeyFieldNamedConstructor: {
    table: '("constructor" text PRIMARY KEY, v int NOT NULL)',
    route: { key: ['constructor'], columns: { constructor: 'constructor', v: 'v' } },
    records: [
      { key: null, value: json({ v: 1 }) },
      { key: null, value: json({ v: 2 }) },
      { key: null, value: json({ constructor: 'c', v: 3 }) },
    ],
    select: '"constructor", v',
    rows: [{ constructor: 'c', v: 3 }],
    dlq: { offsets: ['0', '1'], reason: 'key field constructor' },
  },
  // Keys PostgreSQL finds equal though their text differs: one row, the last, and no halt.
  uuidCase: {
    table: '(id uuid PRIMARY KEY, v int NOT NULL)',
    route: { key: ['id'], columns: { id: 'id', v: 'v' } },
    records: [
      { key: null, value: json({ id: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', v: 1 }) },
      { key: null, value: json({ id: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', v: 2 }) },
    ],
    select: 'id::text AS id, v',
    rows: [{ id: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', v: 2 }],
  },
  leadingZeroIntoInteger: {
    table: '(n integer PRIMARY KEY, v int NOT NULL)',
    route: { key: ['n'], columns: { n: { from: 'key' }, v: 'v' } },
    records: [
      { key: '01', value: json({ v: 1 }) },
      { key: '1', value: json({ v: 2 }) },
    ],
    select: 'n, v',
    rows: [{ n: 1, v: 2 }],
  },
  citext: {
    table: '(name citext PRIMARY KEY, v int NOT NULL)',
    route: { key: ['name'], columns: { name: 'name', v: 'v' } },
    records: [
      { key: null, value: json({ name: 'Alice', v: 1 }) },
      { key: null, value: json({ name: 'alice', v: 2 }) },
    ],
    select: 'name::text AS name, v',
    rows: [{ name: 'alice', v: 2 }],
  },
  // A tombstone deletes what PostgreSQL finds is its key, whatever the bytes: the last record per key decides.
  tombstoneForAnEqualKey: {
    table: '(n integer PRIMARY KEY, v int NOT NULL)',
    route: { key: ['n'], columns: { n: { from: 'key' }, v: 'v' } },
    records: [
      { key: '1', value: json({ v: 1 }) },
      { key: '01', value: null },
      { key: '2', value: json({ v: 2 }) },
      { key: '02', value: null },
      { key: '002', value: json({ v: 3 }) },
    ],
    select: 'n, v',
    rows: [{ n: 2, v: 3 }],
  },
  // A column whose collation is not deterministic: its equality, not the type's, decides.
  nondeterministicCollation: {
    table: '(k text COLLATE sluice_test_ci PRIMARY KEY, v int NOT NULL)',
    route: { key: ['k'], columns: { k: 'k', v: 'v' } },
    records: [
      { key: null, value: json({ k: 'Straße', v: 1 }) },
      { key: null, value: json({ k: 'STRASSE', v: 2 }) },
      { key: null, value: json({ k: 'strasse', v: 3 }) },
    ],
    select: 'v',
    rows: [{ v: 3 }],
  },
  // Tombstones are compared by their keys alone: a column that allows no NULL never sees one from a tombstone.
  tombstonesBesideANotNullDomain: {
    table: '(n integer PRIMARY KEY, name sluice_test_nn_text)',
    route: { key: ['n'], columns: { n: { from: 'key' }, name: 'name' } },
    records: [
      { key: '1', value: json({ name: 'a' }) },
      { key: '01', value: null },
      { key: '2', value: null },
      { key: '3', value: json({ name: 'c' }) },
    ],
    select: 'n, name',
    rows: [{ n: 3, name: 'c' }],
  },
  // A key longer than its varchar(3) column is refused by the column, never cut to a key it is not.
  keyTooLongForItsColumn: {
    table: '(code varchar(3) PRIMARY KEY, v int NOT NULL)',
    route: { key: ['code'], columns: { code: { from: 'key' }, v: 'v' } },
    records: [
      { key: 'abcd1', value: json({ v: 1 }) },
      { key: 'abcd2', value: json({ v: 2 }) },
      { key: 'abc', value: json({ v: 3 }) },
      { key: 'abcXYZ', value: null },
    ],
    select: 'code, v',
    rows: [{ code: 'abc', v: 3 }],
    dlq: { offsets: ['0', '1'], reason: 'too long' },
  },
  // A route that gives the key column another type still compares keys as the table does (citext here).
  routeTypeOverACitextKey: {
    table: '(name citext PRIMARY KEY, v int NOT NULL)',
    route: { key: ['name'], columns: { name: { from: 'field', field: 'name', type: 'text' }, v: 'v' } },
    records: [
      { key: null, value: json({ name: 'Alice', v: 1 }) },
      { key: null, value: json({ name: 'alice', v: 2 }) },
    ],
    select: 'name::text AS name, v',
    rows: [{ name: 'alice', v: 2 }],
  },
  // The unique index's collation decides, even where the column's own is the default.
  uniqueIndexWithItsOwnCollation: {
    table: '(k text NOT NULL, v int NOT NULL)',
    after: 'CREATE UNIQUE INDEX ON $table (k COLLATE sluice_test_ci)',
    route: { key: ['k'], columns: { k: { from: 'key' }, v: 'v' } },
    records: [
      { key: 'A', value: json({ v: 1 }) },
      { key: 'a', value: json({ v: 2 }) },
    ],
    select: 'k, v',
    rows: [{ k: 'a', v: 2 }],
  },
  // A key of topic and partition only: every record of the batch is the same row.
  topicAndPartitionKey: {
    table: '(topic_name text, part int, last_v int NOT NULL, PRIMARY KEY (topic_name, part))',
    route: { key: ['topic_name', 'part'], columns: { topic_name: { from: 'topic' }, part: { from: 'partition' }, last_v: 'v' } },
    records: [
      { key: 'a', value: json({ v: 1 }) },
      { key: 'b', value: json({ v: 2 }) },
      { key: 'c', value: json({ v: 3 }) },
    ],
    select: 'part, last_v',
    rows: [{ part: 0, last_v: 3 }],
  },
  // A key from the timestamp, no JSON field anywhere.
  timestampKeyWithoutFields: {
    table: '(ts timestamptz PRIMARY KEY, body jsonb NOT NULL)',
    route: { key: ['ts'], columns: { ts: { from: 'timestamp' }, body: { from: 'value' } } },
    records: [
      { key: null, value: json({ v: 1 }), timestamp: '1700000000000' },
      { key: null, value: json({ v: 2 }), timestamp: '1700000001000' },
      { key: null, value: json({ v: 3 }), timestamp: '1700000000000' },
    ],
    select: "(extract(epoch FROM ts) * 1000)::bigint::text AS ts, body->>'v' AS v",
    rows: [
      { ts: '1700000000000', v: '3' },
      { ts: '1700000001000', v: '2' },
    ],
  },
};

describe('key equality: the reduction in a batch never decides differently from PostgreSQL', () => {
  it('every case in one batch per topic: the rows PostgreSQL would keep, the DLQ records named, no halt', async () => {
    const kafka = await KafkaHelper.connect();
    const db = await database();
    await db.query('CREATE EXTENSION IF NOT EXISTS citext');
    // Case- and accent-insensitive (ICU level 1), as a column may be declared.
    await db.query(`DO $$ BEGIN CREATE COLLATION sluice_test_ci (provider = icu, locale = 'und-u-ks-level1', deterministic = false);
                    EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    await db.query(`DO $$ BEGIN CREATE DOMAIN sluice_test_nn_text AS text NOT NULL;
                    EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    const routes: RouteOptions[] = [];
    const named = new Map<string, { topic: string; table: string }>();
    for (const [name, c] of Object.entries(cases)) {
      const topic = await kafka.createTopic(1, `key_${name.slice(0, 20)}`);
      const table = uniqueName('keys');
      await db.query(`CREATE TABLE ${table} ${c.table}`);
      if (c.after) await db.query(c.after.replace('$table', table));
      await kafka.produce(topic, c.records.map((r) => ({ ...r, partition: 0 })));
      routes.push({ ...c.route, topic, table } as RouteOptions);
      named.set(name, { topic, table });
    }
    const s = testSluice({ routes, batching: { lingerMs: 200 } });
    await s.sluice.start();
    for (const [name, { topic }] of named) {
      await waitFor(`${name}: every offset committed, or sluice stopped`, async () => s.sluice.state !== 'running' || (await kafka.isFullyCommitted(s.groupId, topic)));
      expect(s.sluice.status().error, name).toBeUndefined();
    }
    for (const [name, c] of Object.entries(cases)) {
      const { topic, table } = named.get(name)!;
      const rows = await db.query(`SELECT ${c.select} FROM ${table} ORDER BY 1`);
      expect({ name, rows: rows.rows }).toEqual({ name, rows: c.rows });
      const dlq = c.dlq ? await kafka.readAll(`${topic}.dlq`) : [];
      expect({ name, dlq: dlq.map((r) => r.headers[DlqHeaders.sourceOffset]) }).toEqual({ name, dlq: c.dlq?.offsets ?? [] });
      for (const r of dlq) expect(String(r.headers[DlqHeaders.errorMessage])).toContain(c.dlq!.reason);
    }
    expect(s.sluice.state).toBe('running');
  });
});
