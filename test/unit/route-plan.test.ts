import { describe, expect, it } from 'vitest';
import { PoisonRecordError } from '../../src/errors.js';
import type { SourceRecord } from '../../src/record.js';
import { RoutePlan, type PlannedColumn, type PreparedWrite } from '../../src/sinks/route-plan.js';

const rec = (offset: number, key: string | null, value: unknown): SourceRecord => ({
  topic: 'orders',
  partition: 2,
  offset: String(offset),
  key: key === null ? null : Buffer.from(key),
  value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
  timestamp: '1700000000000',
  headers: {},
  sizeBytes: 1,
});

/** Why each rejected record of a prepared batch was rejected. */
const rejections = (out: PreparedWrite) => out.rejected.map((r) => r.error.message);

/** The JSON array parameter: a binary json value, which is the UTF-8 text. */
const jsonParam = (value: unknown) => JSON.parse((value as Buffer).toString('utf8')) as unknown;

/**
 * An array parameter in PostgreSQL's binary format (what array_recv reads): its elements' bytes, as text or as
 * they are (bytea), after checking the header names the element type.
 */
function arrayParam(value: unknown, type: 'text' | 'bytea'): Array<string | Buffer | null> {
  const bytes = value as Buffer;
  expect(bytes.readUInt32BE(8)).toBe(type === 'text' ? 25 : 17);
  if (bytes.readInt32BE(0) === 0) {
    expect(bytes.length).toBe(12); // no dimensions: nothing follows the element type
    return [];
  }
  expect([bytes.readInt32BE(0), bytes.readInt32BE(16)]).toEqual([1, 1]); // one dimension, from 1
  const out: Array<string | Buffer | null> = [];
  const hasNull = bytes.readInt32BE(4);
  let at = 20;
  for (let n = bytes.readInt32BE(12); n > 0; n--) {
    const length = bytes.readInt32BE(at);
    at += 4;
    if (length < 0) out.push(null);
    else {
      const element = bytes.subarray(at, at + length);
      out.push(type === 'text' ? element.toString('utf8') : Buffer.from(element));
      at += length;
    }
  }
  expect(at).toBe(bytes.length);
  expect(hasNull).toBe(out.includes(null) ? 1 : 0);
  return out;
}

const byKafkaKey: PlannedColumn[] = [
  { name: 'id', from: 'key', field: 'id', type: 'text' },
  { name: 'name', from: 'field', field: 'name', type: 'text' },
];

describe('RoutePlan', () => {
  it('keeps a fixed statement whose parameter count does not depend on the batch', () => {
    const plan = new RoutePlan({ topic: 'orders', table: 'public.orders', key: ['id'], columns: byKafkaKey, tombstones: 'delete', transform: undefined }, 's');
    const small = plan.prepare([rec(0, 'a', { name: 'x' })]);
    const large = plan.prepare(Array.from({ length: 1000 }, (_, i) => rec(i, `k${i}`, { name: 'x' })));
    expect(small.statements[0]!.text).toBe(large.statements[0]!.text);
    expect(large.statements[0]!.values).toHaveLength(small.statements[0]!.values.length);
    expect(plan.upsertSql).toContain('INSERT INTO "public"."orders"');
  });

  it('reduces a key to its last record by offset, tombstones included; a text Kafka key needs no reduction in SQL', () => {
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['id'], columns: byKafkaKey, tombstones: 'delete', transform: undefined }, 's');
    const out = plan.prepare([rec(0, 'a', { name: 'a0' }), rec(1, 'a', { name: 'a1' }), rec(2, 'b', { name: 'b0' }), rec(3, 'b', null), rec(4, 'c', null), rec(5, 'c', { name: 'c1' })]);
    expect([out.upserted, out.deleted, out.skipped]).toEqual([2, 1, 3]);
    // Text under a deterministic collation is equal exactly when its bytes are: JavaScript's reduction is PostgreSQL's.
    const [del, upsert] = out.statements;
    expect(arrayParam(del!.values[0], 'text')).toEqual(['b']);
    expect(jsonParam(upsert!.values[0])).toEqual([{ name: 'a1' }, { name: 'c1' }]);
    expect(arrayParam(upsert!.values[1], 'text')).toEqual(['a', 'c']);
    expect(plan.upsertSql).not.toContain('DISTINCT ON');
  });

  it('where PostgreSQL may find different bytes equal, tombstones travel flagged with the values and it decides', () => {
    const columns: PlannedColumn[] = [
      { name: 'id', from: 'key', field: 'id', type: 'integer' },
      { name: 'name', from: 'field', field: 'name', type: 'text' },
    ];
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['id'], columns, tombstones: 'delete', transform: undefined }, 's');
    const out = plan.prepare([rec(0, '1', { name: 'a0' }), rec(1, '01', null), rec(2, '2', { name: 'b0' })]);
    expect([out.upserted, out.deleted, out.skipped]).toEqual([2, 1, 0]);
    expect(out.statements).toHaveLength(1);
    expect(out.statements[0]!.reduced).toEqual({ values: 2, tombstones: 1, versioned: false });
    // The values with their positions in the batch; the tombstones with their keys and positions alone.
    const [json, keys, positions, tombstoneKeys, tombstonePositions] = out.statements[0]!.values;
    expect(jsonParam(json)).toEqual([{ name: 'a0' }, { name: 'b0' }]);
    expect([arrayParam(keys, 'text'), positions, arrayParam(tombstoneKeys, 'text'), tombstonePositions]).toEqual([['1', '2'], [0, 2], ['01'], [1]]);
    expect(plan.upsertSql).toContain('sluice$last AS (SELECT DISTINCT ON ("id")');
    expect(plan.upsertSql).toContain('ORDER BY "id", sluice$pos DESC');
    expect(plan.upsertSql).toContain('DELETE FROM "orders" AS d USING sluice$last AS b WHERE b.sluice$tombstone AND d."id" = b."id"');
    const ci = new RoutePlan(
      { topic: 'orders', table: 'orders', key: ['id'], columns: [{ ...byKafkaKey[0]!, collation: '"public"."ci"', deterministic: false }, byKafkaKey[1]!], tombstones: 'delete', transform: undefined },
      's',
    );
    expect(ci.upsertSql).toContain('CAST(r.m_key AS text) COLLATE "public"."ci" AS "id"');
    expect(ci.upsertSql).toContain('CAST(u.k0 AS text) COLLATE "public"."ci"'); // a tombstone's key, compared alike
    expect(ci.upsertSql).toContain('DISTINCT ON ("id")');
  });

  it('a tombstone the route ignores is skipped, key or none', () => {
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['id'], columns: byKafkaKey, tombstones: 'ignore', transform: undefined }, 's');
    const out = plan.prepare([rec(0, null, null), { ...rec(1, null, null), key: Buffer.from([0xff]) }, rec(2, 'a', { name: 'x' })]);
    expect([out.upserted, out.deleted, out.skipped, out.rejected]).toEqual([1, 0, 2, []]);
  });

  it('dedupes on JSON key fields, composite keys included', () => {
    const columns: PlannedColumn[] = [
      { name: 'tenant', from: 'field', field: 'tenant', type: 'text' },
      { name: 'id', from: 'field', field: 'id', type: 'bigint' },
      { name: 'v', from: 'field', field: 'v', type: 'int' },
    ];
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['tenant', 'id'], columns, tombstones: 'ignore', transform: undefined }, 's');
    const out = plan.prepare([rec(0, null, { tenant: 'x', id: 1, v: 1 }), rec(1, null, { tenant: 'y', id: 1, v: 2 }), rec(2, null, { tenant: 'x', id: 1, v: 3 })]);
    expect(out.upserted).toBe(2);
    expect(jsonParam(out.statements[0]!.values[0])).toEqual([{ tenant: 'y', id: 1, v: 2 }, { tenant: 'x', id: 1, v: 3 }]);
  });

  it('leaves out the records it cannot write, names each (topic, partition, offset), and writes the rest', () => {
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['id'], columns: byKafkaKey, tombstones: 'ignore', transform: undefined }, 's');
    const bad = rec(7, 'b', '{"name": ');
    const out = plan.prepare([rec(0, 'a', { name: 'ok' }), bad, rec(8, null, { name: 'x' }), rec(9, 'b', { name: 'b9' })]);
    expect(out.rejected.map((r) => r.record)).toContain(bad);
    expect(out.rejected.every((r) => r.error instanceof PoisonRecordError)).toBe(true);
    expect(rejections(out)).toEqual([
      'record orders[2]@7 cannot be written: value is not a single JSON object',
      'record orders[2]@8 cannot be written: route orders → orders takes its key from the Kafka key, and the record has none',
    ]);
    expect(out.upserted).toBe(2);
    expect(jsonParam(out.statements[0]!.values[0])).toEqual([{ name: 'ok' }, { name: 'b9' }]);
    expect(arrayParam(out.statements[0]!.values[1], 'text')).toEqual(['a', 'b']);
  });

  it('never lets one value spill into the next row: a value must be a single JSON object', () => {
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['id'], columns: byKafkaKey, tombstones: 'ignore', transform: undefined }, 's');
    expect(rejections(plan.prepare([rec(0, 'a', '{"name":"x"},{"name":"y"}')]))).toHaveLength(1);
    expect(rejections(plan.prepare([rec(0, 'a', '[1]')]))[0]).toMatch(/not a single JSON object/);
  });

  it('rejects a record over maxRecordBytes and JSON nested deeper than maxJsonDepth', () => {
    const plan = new RoutePlan(
      { topic: 'orders', table: 'orders', key: ['id'], columns: byKafkaKey, tombstones: 'ignore', transform: undefined, maxRecordBytes: 100, maxJsonDepth: 3 },
      's',
    );
    const big = { ...rec(0, 'a', { name: 'x'.repeat(200) }), sizeBytes: 210 };
    expect(rejections(plan.prepare([big]))).toEqual(['record orders[2]@0 cannot be written: key, value and headers hold 210 bytes, over maxRecordBytes=100']);
    expect(rejections(plan.prepare([rec(1, 'a', { name: 'x', a: { b: [1] } })]))).toEqual([]);
    expect(rejections(plan.prepare([rec(2, 'a', { name: 'x', a: { b: [[1]] } })]))).toEqual([
      'record orders[2]@2 cannot be written: value nests objects and arrays deeper than maxJsonDepth=3',
    ]);
  });

  it('append: every record is its own row, with a plain INSERT and no key', () => {
    const columns: PlannedColumn[] = [
      { name: 'name', from: 'field', field: 'name', type: 'text' },
      { name: 'src_offset', from: 'offset', field: 'src_offset', type: 'bigint' },
    ];
    const plan = new RoutePlan({ topic: 'orders', table: 'events', key: [], columns, tombstones: 'ignore', mode: 'append', transform: undefined }, 's');
    expect(plan.upsertSql).not.toContain('ON CONFLICT');
    const out = plan.prepare([rec(0, 'a', { name: 'x' }), rec(1, 'a', { name: 'x' }), rec(2, null, { name: 'y' }), rec(3, 'a', null)]);
    expect(out.upserted).toBe(3);
    expect(out.skipped).toBe(1); // the tombstone
    expect(jsonParam(out.statements[0]!.values[0])).toEqual([{ name: 'x' }, { name: 'x' }, { name: 'y' }]);
  });

  it('versioned upsert: sends every record and lets PostgreSQL keep the newest per key and skip older rows', () => {
    const columns: PlannedColumn[] = [...byKafkaKey, { name: 'version', from: 'field', field: 'version', type: 'integer' }];
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['id'], columns, tombstones: 'ignore', version: 'version', transform: undefined }, 's');
    expect(plan.upsertSql).toContain('SELECT DISTINCT ON ("id")');
    expect(plan.upsertSql).toContain('ORDER BY "id", "version" DESC NULLS LAST, sluice$pos DESC');
    expect(plan.upsertSql).toContain('WHERE EXCLUDED."version" >= t."version" OR t."version" IS NULL');
    const out = plan.prepare([rec(0, 'a', { name: 'a3', version: 3 }), rec(1, 'a', { name: 'a1', version: 1 })]);
    expect(out.statements[0]!.reduced).toEqual({ values: 2, tombstones: 0, versioned: true });
    expect(jsonParam(out.statements[0]!.values[0])).toHaveLength(2);
  });

  it('reduces only records whose key is the same bytes: JSON text of a key field as written, the Kafka key as bytes', () => {
    const columns: PlannedColumn[] = [
      { name: 'id', from: 'field', field: 'id', type: 'bigint' },
      { name: 'v', from: 'field', field: 'v', type: 'int' },
    ];
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['id'], columns, tombstones: 'ignore', transform: undefined }, 's');
    const out = plan.prepare([
      rec(0, null, '{"id":1234567890123456789,"v":1}'),
      rec(1, null, '{"id":1234567890123456790,"v":2}'), // the same JavaScript number, another key
      rec(2, null, '{"id":1.10,"v":3}'),
      rec(3, null, '{"id":1.1,"v":4}'), // PostgreSQL decides whether these two are one key
      rec(4, null, '{"\\u0069d":1234567890123456789,"v":5}'), // an escaped name is the same member
      rec(5, null, '{"id":7,"id":1234567890123456790,"v":6}'), // the last of duplicate members counts
    ]);
    expect(out.upserted).toBe(4);
    expect(out.skipped).toBe(2);
    expect(plan.upsertSql).toContain('SELECT DISTINCT ON ("id")');
    expect(plan.upsertSql).toContain('ORDER BY "id", sluice$pos DESC');
    expect(out.statements[0]!.reduced).toEqual({ values: 4, tombstones: 0, versioned: false });

    const bytes: PlannedColumn[] = [
      { name: 'k', from: 'key', field: 'k', type: 'bytea' },
      { name: 'v', from: 'field', field: 'v', type: 'int' },
    ];
    const byBytes = new RoutePlan({ topic: 'orders', table: 'orders', key: ['k'], columns: bytes, tombstones: 'delete', transform: undefined }, 's');
    const keyed = (offset: number, key: number[], value: unknown) => ({ ...rec(offset, null, value), key: Buffer.from(key) });
    const binary = byBytes.prepare([keyed(0, [0xff], { v: 1 }), keyed(1, [0xfe], { v: 2 }), keyed(2, [0, 1], { v: 3 }), keyed(3, [0xff], null)]);
    expect([binary.upserted, binary.deleted]).toEqual([2, 1]);
    expect(arrayParam(binary.statements[0]!.values[0], 'bytea')).toEqual([Buffer.from([0xff])]);
    expect(arrayParam(binary.statements[1]!.values[1], 'bytea')).toEqual([Buffer.from([0xfe]), Buffer.from([0, 1])]);
  });

  it('a key field that is missing or null is missing, whatever its name; a key that is not UTF-8 never becomes text', () => {
    const columns: PlannedColumn[] = [{ name: 'constructor', from: 'field', field: 'constructor', type: 'text' }];
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['constructor'], columns, tombstones: 'ignore', transform: undefined }, 's');
    expect(rejections(plan.prepare([rec(0, null, { v: 1 }), rec(1, null, { constructor: null })]))).toEqual([
      'record orders[2]@0 cannot be written: key field constructor is missing or null (route orders → orders)',
      'record orders[2]@1 cannot be written: key field constructor is missing or null (route orders → orders)',
    ]);
    const text = new RoutePlan({ topic: 'orders', table: 'orders', key: ['id'], columns: byKafkaKey, tombstones: 'ignore', transform: undefined }, 's');
    const out = text.prepare([{ ...rec(0, null, { name: 'x' }), key: Buffer.from([0xff]) }, { ...rec(1, null, { name: 'y' }), key: Buffer.from('a\u0000') }]);
    expect(rejections(out)).toEqual([
      'record orders[2]@0 cannot be written: the Kafka key is not valid UTF-8 and route orders → orders stores it as text (map it to a bytea column to keep any bytes)',
      'record orders[2]@1 cannot be written: the Kafka key contains a NUL byte, which PostgreSQL text cannot hold (route orders → orders; map it to a bytea column to keep any bytes)',
    ]);
  });

  it('key arrays go in binary: a record without a Kafka key is a NULL element, and a batch without tombstones an empty array', () => {
    const columns: PlannedColumn[] = [
      { name: 'id', from: 'key', field: 'id', type: 'integer' },
      { name: 'k', from: 'key', field: 'k', type: 'text' },
      { name: 'kb', from: 'key', field: 'kb', type: 'bytea' },
      { name: 'v', from: 'field', field: 'v', type: 'int' },
    ];
    // The key is the table's integer id: PostgreSQL reduces, so the statement carries the tombstones' keys too.
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['v'], columns, tombstones: 'ignore', transform: undefined }, 's');
    const out = plan.prepare([rec(0, null, { v: 1 }), rec(1, 'x', { v: 2 })]);
    const params = plan.upsertSql.match(/\$\d+::(text|bytea)\[\]/g);
    expect(params).toEqual(['$2::text[]', '$3::bytea[]']);
    const [, keys, keyBytes] = out.statements[0]!.values;
    expect(arrayParam(keys, 'text')).toEqual([null, 'x']);
    expect(arrayParam(keyBytes, 'bytea')).toEqual([null, Buffer.from('x')]);

    const reducing = new RoutePlan({ topic: 'orders', table: 'orders', key: ['id'], columns: columns.slice(0, 1).concat(columns[3]!), tombstones: 'delete', transform: undefined }, 's');
    const [, , , tombstoneKeys] = reducing.prepare([rec(0, '1', { v: 1 })]).statements[0]!.values;
    expect(arrayParam(tombstoneKeys, 'text')).toEqual([]);
  });

  it('keyHash: the same 32 bytes for the same Kafka key, and a row of its own for each record without a key', () => {
    const columns: PlannedColumn[] = [
      { name: 'h', from: 'keyHash', field: 'h', type: 'bytea' },
      { name: 'value', from: 'value', field: 'value', type: 'jsonb' },
    ];
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['h'], columns, tombstones: 'delete', transform: undefined }, 's');
    const out = plan.prepare([rec(0, null, { a: 1 }), rec(1, null, { a: 2 }), rec(2, 'k', { a: 3 }), rec(3, 'k', { a: 4 }), rec(4, null, null)]);
    expect([out.upserted, out.deleted, out.skipped]).toEqual([3, 0, 2]); // a keyless tombstone has no row to delete
    const hashes = arrayParam(out.statements[0]!.values[1], 'bytea') as Buffer[];
    expect(hashes.map((h) => h.length)).toEqual([32, 32, 32]);
    expect(new Set(hashes.map((h) => h.toString('hex'))).size).toBe(3);
  });

  it('never casts a value to a length-limited type, which would cut it silently: the column refuses what is too long', () => {
    const columns: PlannedColumn[] = [
      { name: 'code', from: 'key', field: 'code', type: 'character varying(3)' },
      { name: 'flag', from: 'field', field: 'flag', type: 'character(2)' },
    ];
    const plan = new RoutePlan({ topic: 'orders', table: 'orders', key: ['code'], columns, tombstones: 'delete', transform: undefined }, 's');
    expect(plan.upsertSql).toContain('CAST(r.m_key AS character varying)');
    expect(plan.upsertSql).toContain('"flag" bpchar');
    expect(plan.upsertSql).not.toMatch(/\(\d+\)/);
  });
});
