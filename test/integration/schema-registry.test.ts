import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { RouteOptions } from '../../src/index.js';
import { DlqHeaders } from '../../src/dlq/dlq-headers.js';
import { brokers, databaseUrl, topicAndTable, waitFor } from '../helpers/stack.js';
import { runCli } from '../helpers/process.js';
import { testSluice } from '../helpers/sluice.js';
import { OwnRegistry, avroEncoder, canRunOwnRegistry, protobufEncoder, unscaledBytes, wire } from '../helpers/schema-registry.js';

/**
 * Values in the schema registry's wire format (Avro, Protobuf, JSON Schema), with their schemas in a real registry
 * (Apicurio Registry, Confluent-compatible API), land in PostgreSQL with exact types; what cannot be decoded goes to
 * the DLQ with the reason; a registry that is away is waited for, and nothing is dead-lettered meanwhile.
 */

const registry = new OwnRegistry('test', 28081);

/** Every column of a table's rows as PostgreSQL's own text (`column::text`), in UTC, ordered by `order`. */
async function rowsAsText(db: pg.Client, table: string, order = 'id'): Promise<Array<Record<string, string | null>>> {
  await db.query(`SET TIME ZONE 'UTC'`);
  const { rows: columns } = await db.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  );
  const list = columns.map((c) => `${c.name}::text AS ${c.name}`).join(', ');
  return (await db.query<Record<string, string | null>>(`SELECT ${list} FROM ${table} ORDER BY ${order}`)).rows;
}

function fieldsRoute(topic: string, table: string, format: RouteOptions['format'], fields: string[]): RouteOptions {
  return { topic, table, key: ['id'], format, columns: Object.fromEntries(fields.map((f) => [f, f])) };
}

/**
 * An HTTP proxy in front of the registry that counts the requests it has open at once (the most, over its life).
 * Closed when the test ends.
 */
async function countingProxy(target: number): Promise<{ url: string; requests: () => number; mostAtOnce: () => number }> {
  let open = 0;
  let most = 0;
  let requests = 0;
  const server: Server = createServer((incoming, outgoing) => {
    requests++;
    most = Math.max(most, ++open);
    const done = () => open--;
    const forwarded = request({ host: '127.0.0.1', port: target, path: incoming.url, method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
      answer.on('end', done);
    });
    forwarded.on('error', (error) => {
      done();
      outgoing.destroy(error);
    });
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/apis/ccompat/v7`, requests: () => requests, mostAtOnce: () => most };
}

describe.skipIf(!canRunOwnRegistry())('schema registry formats', () => {
  beforeAll(async () => {
    await registry.start();
  }, 180_000);
  afterAll(async () => {
    await registry.stop();
  });

  it('Avro lands exactly: decimals to the last digit, timestamps to the microsecond, 64-bit ids, uuid, bytes, nulls, nested values as jsonb', async () => {
    const columns = [
      'id bigint PRIMARY KEY',
      'amount numeric(30,10)',
      'price numeric(18,2)',
      'placed_at timestamptz',
      'placed_ms timestamptz',
      'local_at timestamp',
      'day date',
      'at_time time',
      'ref uuid',
      'blob bytea',
      'note text',
      'customer jsonb',
      'tags jsonb',
      'status text',
      'ratio double precision',
      'counts jsonb',
    ];
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'avro', table: 'avro_orders', columns: columns.join(', ') });
    const schema = {
      type: 'record',
      name: 'Order',
      namespace: 'shop',
      fields: [
        { name: 'id', type: 'long' },
        { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 30, scale: 10 } },
        { name: 'price', type: { type: 'fixed', name: 'Price', size: 8, logicalType: 'decimal', precision: 18, scale: 2 } },
        { name: 'placed_at', type: { type: 'long', logicalType: 'timestamp-micros' } },
        { name: 'placed_ms', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'local_at', type: { type: 'long', logicalType: 'local-timestamp-micros' } },
        { name: 'day', type: { type: 'int', logicalType: 'date' } },
        { name: 'at_time', type: { type: 'long', logicalType: 'time-micros' } },
        { name: 'ref', type: { type: 'string', logicalType: 'uuid' } },
        { name: 'blob', type: 'bytes' },
        { name: 'note', type: ['null', 'string'], default: null },
        { name: 'customer', type: { type: 'record', name: 'Customer', fields: [{ name: 'name', type: 'string' }, { name: 'vip', type: 'boolean' }] } },
        { name: 'tags', type: { type: 'array', items: 'string' } },
        { name: 'status', type: { type: 'enum', name: 'Status', symbols: ['NEW', 'PAID'] } },
        { name: 'ratio', type: 'double' },
        { name: 'counts', type: { type: 'map', values: 'long' } },
      ],
    };
    const id = await registry.register(`${topic}-value`, 'AVRO', JSON.stringify(schema));
    const encode = avroEncoder(schema);
    const fixed8 = (unscaled: bigint) => Buffer.from(BigInt.asUintN(64, unscaled).toString(16).padStart(16, '0'), 'hex');
    const values = [
      {
        id: 9007199254740993n, // 2^53 + 1: not a double
        amount: unscaledBytes(-123456789012345678900123456789n),
        price: fixed8(123456789012345678n),
        placed_at: 1717171717123456n,
        placed_ms: 1717171717123n,
        local_at: 1717171717000001n,
        day: 19875,
        at_time: 45296789012n,
        ref: '3b241101-e2bb-4255-8caf-4136c566a962',
        blob: Buffer.from([0, 1, 254, 255]),
        note: null,
        customer: { name: 'Zoë "Q" \\ ☃', vip: true },
        tags: ['a', 'b'],
        status: 'PAID',
        ratio: 0.1,
        counts: { x: -9223372036854775808n },
      },
      {
        id: -5n,
        amount: unscaledBytes(1n),
        price: fixed8(-1n),
        placed_at: -1n, // a microsecond before 1970
        placed_ms: 0n,
        local_at: 0n,
        day: -1,
        at_time: 0n,
        ref: '00000000-0000-0000-0000-000000000000',
        blob: Buffer.alloc(0),
        note: { string: 'hello' },
        customer: { name: '', vip: false },
        tags: [],
        status: 'NEW',
        ratio: -1e300,
        counts: {},
      },
    ];
    await kafka.produce(topic, values.map((v) => ({ key: null, value: wire(id, encode(v)) })));
    const { sluice, groupId } = testSluice({ schemaRegistry: { url: registry.url }, routes: [fieldsRoute(topic, table, 'avro', schema.fields.map((f) => f.name))] });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));

    expect(await rowsAsText(db, table)).toEqual([
      {
        id: '-5',
        amount: '0.0000000001',
        price: '-0.01',
        placed_at: '1969-12-31 23:59:59.999999+00',
        placed_ms: '1970-01-01 00:00:00+00',
        local_at: '1970-01-01 00:00:00',
        day: '1969-12-31',
        at_time: '00:00:00',
        ref: '00000000-0000-0000-0000-000000000000',
        blob: '\\x',
        note: 'hello',
        customer: '{"vip": false, "name": ""}',
        tags: '[]',
        status: 'NEW',
        ratio: '-1e+300',
        counts: '{}',
      },
      {
        id: '9007199254740993',
        amount: '-12345678901234567890.0123456789',
        price: '1234567890123456.78',
        placed_at: '2024-05-31 16:08:37.123456+00',
        placed_ms: '2024-05-31 16:08:37.123+00',
        local_at: '2024-05-31 16:08:37.000001',
        day: '2024-06-01',
        at_time: '12:34:56.789012',
        ref: '3b241101-e2bb-4255-8caf-4136c566a962',
        blob: '\\x0001feff',
        note: null,
        customer: '{"vip": true, "name": "Zoë \\"Q\\" \\\\ ☃"}',
        tags: '["a", "b"]',
        status: 'PAID',
        ratio: '0.1',
        counts: '{"x": -9223372036854775808}',
      },
    ]);
  });

  it('Protobuf lands exactly: 64-bit integers, Timestamp, wrappers (NULL when absent), enums, nested messages, proto3 defaults', async () => {
    const columns = [
      'id bigint PRIMARY KEY',
      'big numeric(20,0)',
      'placed_at timestamptz',
      'note text',
      'points bigint',
      'blob bytea',
      'status text',
      'customer jsonb',
      'tags jsonb',
      'ratio double precision',
      'nickname text',
      'qty int',
    ];
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'proto', table: 'proto_orders', columns: columns.join(', ') });
    const proto = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message Other { string unused = 1; }

message Order {
  int64 id = 1;
  uint64 big = 2;
  google.protobuf.Timestamp placed_at = 3;
  google.protobuf.StringValue note = 4;
  google.protobuf.Int64Value points = 5;
  bytes blob = 6;
  Status status = 7;
  Customer customer = 8;
  repeated string tags = 9;
  double ratio = 10;
  optional string nickname = 11;
  int32 qty = 12;
  message Customer { string name = 1; bool vip = 2; }
}

enum Status { NEW = 0; PAID = 1; }
`;
    const id = await registry.register(`${topic}-value`, 'PROTOBUF', proto);
    // Order is the file's second message: the wire format names it by index [1].
    const encode = protobufEncoder(proto, 'Order');
    await kafka.produce(topic, [
      {
        key: null,
        value: wire(
          id,
          encode({
            id: '9007199254740993',
            big: '18446744073709551615',
            placed_at: { seconds: 1717171717, nanos: 123456000 },
            note: { value: 'n' },
            points: { value: '-9007199254740993' },
            blob: Buffer.from([0, 255]),
            status: 1,
            customer: { name: 'Zoë', vip: true },
            tags: ['a', 'b'],
            ratio: 0.1,
            nickname: 'nick',
            qty: 0,
          }),
        ),
      },
      { key: null, value: wire(id, encode({ id: '2' })) },
    ]);
    const fields = ['id', 'big', 'placed_at', 'note', 'points', 'blob', 'status', 'customer', 'tags', 'ratio', 'nickname', 'qty'];
    const { sluice, groupId } = testSluice({ schemaRegistry: { url: registry.url }, routes: [fieldsRoute(topic, table, 'protobuf', fields)] });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));

    expect(await rowsAsText(db, table)).toEqual([
      {
        id: '2',
        big: '0',
        placed_at: null,
        note: null,
        points: null,
        blob: '\\x',
        status: 'NEW',
        customer: null,
        tags: '[]',
        ratio: '0',
        nickname: null,
        qty: '0',
      },
      {
        id: '9007199254740993',
        big: '18446744073709551615',
        placed_at: '2024-05-31 16:08:37.123456+00',
        note: 'n',
        points: '-9007199254740993',
        blob: '\\x00ff',
        status: 'PAID',
        customer: '{"vip": true, "name": "Zoë"}',
        tags: '["a", "b"]',
        ratio: '0.1',
        nickname: 'nick',
        qty: '0',
      },
    ]);
  });

  it('JSON Schema lands as JSON does, numbers exact', async () => {
    const { kafka, topic, db, table } = await topicAndTable({
      partitions: 1,
      topic: 'jsonschema',
      table: 'js_orders',
      columns: 'id bigint PRIMARY KEY, amount numeric, at timestamptz, customer jsonb',
    });
    const schema = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { id: { type: 'integer' }, amount: { type: 'number' }, at: { type: 'string', format: 'date-time' }, customer: { type: 'object' } },
      required: ['id'],
    };
    const id = await registry.register(`${topic}-value`, 'JSON', JSON.stringify(schema));
    const text = '{"id": 9007199254740993, "amount": 0.1000000000000000000001, "at": "2024-05-31T16:08:37.123456Z", "customer": {"name": "Zoë"}}';
    await kafka.produce(topic, [{ key: null, value: wire(id, Buffer.from(text)) }]);
    const { sluice, groupId } = testSluice({ schemaRegistry: { url: registry.url }, routes: [fieldsRoute(topic, table, 'json-schema', ['id', 'amount', 'at', 'customer'])] });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await rowsAsText(db, table)).toEqual([
      { id: '9007199254740993', amount: '0.1000000000000000000001', at: '2024-05-31 16:08:37.123456+00', customer: '{"name": "Zoë"}' },
    ]);
  });

  it('schema evolution mid-topic: records of both versions land, and the added field fills its column from the new version on', async () => {
    const { kafka, topic, db, table } = await topicAndTable({
      partitions: 1,
      topic: 'evolve',
      table: 'evolve_users',
      columns: 'id bigint PRIMARY KEY, name text NOT NULL, email text',
    });
    const v1 = { type: 'record', name: 'User', fields: [{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }] };
    const v2 = { ...v1, fields: [...v1.fields, { name: 'email', type: ['null', 'string'], default: null }] };
    const id1 = await registry.register(`${topic}-value`, 'AVRO', JSON.stringify(v1));
    const id2 = await registry.register(`${topic}-value`, 'AVRO', JSON.stringify(v2));
    expect(id2).not.toBe(id1);
    const [e1, e2] = [avroEncoder(v1), avroEncoder(v2)];
    await kafka.produce(topic, [
      { key: null, value: wire(id1, e1({ id: 1n, name: 'ann' })) },
      { key: null, value: wire(id1, e1({ id: 2n, name: 'bob' })) },
      { key: null, value: wire(id2, e2({ id: 3n, name: 'cy', email: { string: 'cy@example.com' } })) },
      { key: null, value: wire(id2, e2({ id: 4n, name: 'di', email: null })) },
      // A record of the old version after the new one: both stay readable.
      { key: null, value: wire(id1, e1({ id: 5n, name: 'ed' })) },
    ]);
    const { sluice, groupId } = testSluice({ schemaRegistry: { url: registry.url }, routes: [fieldsRoute(topic, table, 'avro', ['id', 'name', 'email'])] });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await rowsAsText(db, table)).toEqual([
      { id: '1', name: 'ann', email: null },
      { id: '2', name: 'bob', email: null },
      { id: '3', name: 'cy', email: 'cy@example.com' },
      { id: '4', name: 'di', email: null },
      { id: '5', name: 'ed', email: null },
    ]);
  });

  it('an unknown schema id, truncated bytes, a value not in the wire format and a row PostgreSQL refuses go to the DLQ with the reason, as they came; the rest lands', async () => {
    const { kafka, topic, db, table } = await topicAndTable({
      partitions: 1,
      topic: 'badwire',
      table: 'badwire_users',
      columns: "id bigint PRIMARY KEY, name text CHECK (name <> 'refused')",
    });
    const schema = { type: 'record', name: 'User', fields: [{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }] };
    const id = await registry.register(`${topic}-value`, 'AVRO', JSON.stringify(schema));
    const encode = avroEncoder(schema);
    const whole = wire(id, encode({ id: 3n, name: 'a name long enough to cut' }));
    const poison = {
      unknownId: wire(2_000_000_000, encode({ id: 2n, name: 'unknown schema' })),
      truncated: whole.subarray(0, whole.length - 4),
      plainJson: Buffer.from('{"id": 4, "name": "plain json"}'),
      // Decodes, but the table's constraint refuses the row: found by PostgreSQL, dead-lettered in its wire format.
      refused: wire(id, encode({ id: 6n, name: 'refused' })),
    };
    await kafka.produce(topic, [
      { key: 'k1', value: wire(id, encode({ id: 1n, name: 'first' })) },
      { key: 'k2', value: poison.unknownId },
      { key: 'k3', value: poison.truncated },
      { key: 'k4', value: poison.plainJson },
      { key: 'k5', value: wire(id, encode({ id: 5n, name: 'last' })) },
      { key: 'k6', value: poison.refused },
    ]);
    const { sluice, groupId } = testSluice({ schemaRegistry: { url: registry.url }, routes: [fieldsRoute(topic, table, 'avro', ['id', 'name'])] });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));

    expect(await rowsAsText(db, table)).toEqual([
      { id: '1', name: 'first' },
      { id: '5', name: 'last' },
    ]);
    const dlq = await kafka.readAll(`${topic}.dlq`);
    expect(dlq.map((r) => r.key?.toString())).toEqual(['k2', 'k3', 'k4', 'k6']);
    expect(dlq.map((r) => r.value)).toEqual([poison.unknownId, poison.truncated, poison.plainJson, poison.refused]);
    const reasons = dlq.map((r) => r.headers[DlqHeaders.errorMessage]);
    expect(reasons[0]).toMatch(/@1 cannot be written: value: schema id 2000000000 is not in the schema registry$/);
    expect(reasons[1]).toMatch(new RegExp(`@2 cannot be written: value does not decode as avro with schema id ${id}: the Avro value is truncated$`));
    expect(reasons[2]).toMatch(/@3 cannot be written: value: not in the schema registry wire format: the first byte is 123, not the magic byte 0 \(it looks like plain JSON\)$/);
    expect(reasons[3]).toMatch(/@5 cannot be written: PostgreSQL rejected it: .*check constraint/);
    expect(dlq[3]!.headers[DlqHeaders.sqlState]).toBe('23514');
    expect(dlq.every((r) => r.headers[DlqHeaders.errorCode] === 'SLUICE_POISON_RECORD')).toBe(true);
  });

  it('a batch whose every record names a schema id of its own that the registry does not know: asked at most 8 at a time, all to the DLQ', async () => {
    const { kafka, topic, table } = await topicAndTable({ partitions: 1, topic: 'manyids', table: 'manyids_users', columns: 'id bigint PRIMARY KEY, name text' });
    const proxy = await countingProxy(registry.port);
    const count = 200;
    await kafka.produce(topic, Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: wire(1_900_000_000 + i, Buffer.from([2, 0])) })));
    const { sluice, groupId } = testSluice({
      schemaRegistry: { url: proxy.url },
      // Every record is poison here: the breaker would stop sluice before the batch is through.
      breaker: { maxDlqRatio: 1 },
      routes: [fieldsRoute(topic, table, 'avro', ['id', 'name'])],
    });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));

    const dlq = await kafka.readAll(`${topic}.dlq`);
    expect(dlq).toHaveLength(count);
    expect(dlq[7]!.headers[DlqHeaders.errorMessage]).toMatch(/@7 cannot be written: value: schema id 1900000007 is not in the schema registry$/);
    // Each id asked twice (a replica may lag), never more than 8 requests open at once.
    expect(proxy.requests()).toBeGreaterThanOrEqual(2 * count);
    expect(proxy.mostAtOnce()).toBeLessThanOrEqual(8);
    expect(proxy.mostAtOnce()).toBeGreaterThan(1);
  });

  it('keys in the wire format: key columns read fields of an Avro key, and a tombstone deletes the row its key names', async () => {
    const { kafka, topic, db, table } = await topicAndTable({
      partitions: 1,
      topic: 'avrokeys',
      table: 'avro_accounts',
      columns: 'tenant text, id bigint, name text, key_doc jsonb, PRIMARY KEY (tenant, id)',
    });
    const keySchema = { type: 'record', name: 'AccountKey', fields: [{ name: 'tenant', type: 'string' }, { name: 'id', type: 'long' }] };
    const valueSchema = { type: 'record', name: 'Account', fields: [{ name: 'name', type: 'string' }] };
    const [keyId, valueId] = [await registry.register(`${topic}-key`, 'AVRO', JSON.stringify(keySchema)), await registry.register(`${topic}-value`, 'AVRO', JSON.stringify(valueSchema))];
    const [encodeKey, encodeValue] = [avroEncoder(keySchema), avroEncoder(valueSchema)];
    const key = (tenant: string, id: bigint) => wire(keyId, encodeKey({ tenant, id }));
    const value = (name: string) => wire(valueId, encodeValue({ name }));
    await kafka.produce(topic, [
      { key: key('a', 1n), value: value('first') },
      { key: key('a', 9007199254740993n), value: value('big') },
      { key: key('b', 1n), value: value('other tenant') },
      { key: key('a', 1n), value: value('first, renamed') },
      { key: key('a', 9007199254740993n), value: null }, // a tombstone: deletes by the key's fields
      { key: Buffer.from('not in the wire format'), value: value('poison') },
    ]);
    const route: RouteOptions = {
      topic,
      table,
      key: ['tenant', 'id'],
      format: 'avro',
      keyFormat: 'avro',
      columns: { tenant: { from: 'keyField' }, id: { from: 'keyField' }, name: 'name', key_doc: { from: 'key' } },
    };
    const { sluice, groupId } = testSluice({ schemaRegistry: { url: registry.url }, routes: [route] });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await rowsAsText(db, table, 'tenant, id')).toEqual([
      { tenant: 'a', id: '1', name: 'first, renamed', key_doc: '{"id": 1, "tenant": "a"}' },
      { tenant: 'b', id: '1', name: 'other tenant', key_doc: '{"id": 1, "tenant": "b"}' },
    ]);
    const dlq = await kafka.readAll(`${topic}.dlq`);
    expect(dlq.map((r) => r.headers[DlqHeaders.errorMessage])).toEqual([
      expect.stringMatching(/@5 cannot be written: key: not in the schema registry wire format: the first byte is 110/),
    ]);
    // A tombstone for a row an earlier batch wrote.
    await kafka.produce(topic, [{ key: key('b', 1n), value: null }]);
    await waitFor('the tombstone committed', () => kafka.isFullyCommitted(groupId, topic));
    expect((await rowsAsText(db, table, 'tenant, id')).map((r) => `${r.tenant}/${r.id}`)).toEqual(['a/1']);
  });

  it('a Debezium change-event topic (Avro keys and values, creates, updates, deletes and their tombstones, snapshot reads) is mirrored exactly', async () => {
    const { kafka, topic, db, table } = await topicAndTable({
      partitions: 1,
      topic: 'dbz',
      table: 'dbz_customers',
      columns: 'id int PRIMARY KEY, name text NOT NULL, balance numeric(10,2), updated_at timestamp, born date',
    });
    const row = {
      type: 'record',
      name: 'Value',
      namespace: 'dbserver1.inventory.customers',
      fields: [
        { name: 'id', type: 'int' },
        { name: 'name', type: 'string' },
        { name: 'balance', type: ['null', { type: 'bytes', scale: 2, precision: 10, 'connect.version': 1, 'connect.parameters': { scale: '2' }, 'connect.name': 'org.apache.kafka.connect.data.Decimal', logicalType: 'decimal' }], default: null },
        { name: 'updated_at', type: ['null', { type: 'long', 'connect.version': 1, 'connect.name': 'io.debezium.time.MicroTimestamp' }], default: null },
        { name: 'born', type: ['null', { type: 'int', 'connect.version': 1, 'connect.name': 'io.debezium.time.Date' }], default: null },
      ],
      'connect.name': 'dbserver1.inventory.customers.Value',
    };
    const envelope = {
      type: 'record',
      name: 'Envelope',
      namespace: 'dbserver1.inventory.customers',
      fields: [
        { name: 'before', type: ['null', row], default: null },
        { name: 'after', type: ['null', 'Value'], default: null },
        {
          name: 'source',
          type: { type: 'record', name: 'Source', namespace: 'io.debezium.connector.postgresql', fields: [{ name: 'version', type: 'string' }, { name: 'ts_ms', type: 'long' }, { name: 'lsn', type: ['null', 'long'], default: null }] },
        },
        { name: 'op', type: 'string' },
        { name: 'ts_ms', type: ['null', 'long'], default: null },
      ],
      'connect.name': 'dbserver1.inventory.customers.Envelope',
    };
    const keySchema = { type: 'record', name: 'Key', namespace: 'dbserver1.inventory.customers', fields: [{ name: 'id', type: 'int' }] };
    const valueId = await registry.register(`${topic}-value`, 'AVRO', JSON.stringify(envelope));
    const keyId = await registry.register(`${topic}-key`, 'AVRO', JSON.stringify(keySchema));
    const [encodeValue, encodeKey] = [avroEncoder(envelope), avroEncoder(keySchema)];
    const customer = (id: number, name: string, cents: bigint) => ({
      'dbserver1.inventory.customers.Value': {
        id,
        name,
        balance: { bytes: unscaledBytes(cents) },
        updated_at: { long: 1717171717123456n + BigInt(id) },
        born: { int: 19875 - id },
      },
    });
    let lsn = 0n;
    const event = (id: number, op: string, beforeRow: unknown, afterRow: unknown) => ({
      key: wire(keyId, encodeKey({ id })),
      value: wire(valueId, encodeValue({ before: beforeRow, after: afterRow, source: { version: '2.7.0', ts_ms: 1n, lsn: { long: ++lsn } }, op, ts_ms: { long: 2n } })),
    });
    const tombstone = (id: number) => ({ key: wire(keyId, encodeKey({ id })), value: null });
    await kafka.produce(topic, [event(1, 'c', null, customer(1, 'ann', 100n)), event(2, 'c', null, customer(2, 'bob', -250n)), event(5, 'c', null, customer(5, 'eve', 0n))]);
    const route: RouteOptions = { ...fieldsRoute(topic, table, 'avro', ['id', 'name', 'balance', 'updated_at', 'born']), envelope: 'debezium' };
    const { sluice, groupId } = testSluice({ schemaRegistry: { url: registry.url }, routes: [route] });
    await sluice.start();
    await waitFor('the creates landed', () => kafka.isFullyCommitted(groupId, topic));
    expect((await rowsAsText(db, table)).map((r) => r.id)).toEqual(['1', '2', '5']);

    await kafka.produce(topic, [
      event(1, 'u', customer(1, 'ann', 100n), customer(1, 'ann b.', 12345678n)),
      event(2, 'd', customer(2, 'bob', -250n), null), // a row written by an earlier batch
      tombstone(2),
      event(3, 'c', null, customer(3, 'cy', 1n)),
      event(4, 'r', null, customer(4, 'di', 99n)), // a snapshot read
      event(6, 'c', null, customer(6, 'fay', 5n)),
      event(6, 'd', customer(6, 'fay', 5n), null), // created and deleted in the same batch
      tombstone(6),
      event(5, 'd', customer(5, 'eve', 0n), null),
      tombstone(5),
      event(7, 'd', customer(7, 'gus', 0n), null), // a delete of a row that is not there
    ]);
    await waitFor('the changes landed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await rowsAsText(db, table)).toEqual([
      { id: '1', name: 'ann b.', balance: '123456.78', updated_at: '2024-05-31 16:08:37.123457', born: '2024-05-31' },
      { id: '3', name: 'cy', balance: '0.01', updated_at: '2024-05-31 16:08:37.123459', born: '2024-05-29' },
      { id: '4', name: 'di', balance: '0.99', updated_at: '2024-05-31 16:08:37.12346', born: '2024-05-28' },
    ]);
    expect(await kafka.recordCount(`${topic}.dlq`).catch(() => 0)).toBe(0);
  });

  it('Kafka Connect JSON envelopes: Decimal, Timestamp, Date and Time land as numeric, timestamptz, date and time, in arrays too, 64-bit ids exact', async () => {
    const { kafka, topic, db, table } = await topicAndTable({
      partitions: 1,
      topic: 'connectlogical',
      table: 'connect_payments',
      columns: 'id bigint PRIMARY KEY, amount numeric(20,4), paid_at timestamptz, due date, cutoff time, refunds numeric(20,4)[], retried_at timestamptz[]',
    });
    const schema = {
      type: 'struct',
      name: 'payments.Payment',
      optional: false,
      fields: [
        { field: 'id', type: 'int64', optional: false },
        { field: 'amount', type: 'bytes', optional: true, name: 'org.apache.kafka.connect.data.Decimal', version: 1, parameters: { scale: '4' } },
        { field: 'paid_at', type: 'int64', optional: true, name: 'org.apache.kafka.connect.data.Timestamp', version: 1 },
        { field: 'due', type: 'int32', optional: true, name: 'org.apache.kafka.connect.data.Date', version: 1 },
        { field: 'cutoff', type: 'int32', optional: true, name: 'org.apache.kafka.connect.data.Time', version: 1 },
        // Arrays of Connect's Decimal and Timestamp, as JsonConverter writes them (Debezium sends a numeric[] column so).
        { field: 'refunds', type: 'array', optional: true, items: { type: 'bytes', optional: true, name: 'org.apache.kafka.connect.data.Decimal', parameters: { scale: '4' } } },
        { field: 'retried_at', type: 'array', optional: true, items: { type: 'int64', optional: true, name: 'org.apache.kafka.connect.data.Timestamp' } },
      ],
    };
    // As JsonConverter writes them: a Decimal as the base64 of its unscaled two's complement bytes, the rest as numbers.
    const base64 = (unscaled: bigint) => JSON.stringify(unscaledBytes(unscaled).toString('base64'));
    const payment = (id: string, unscaled: bigint, paidAt: number | null, refunds: string, retriedAt: string) =>
      `{"schema":${JSON.stringify(schema)},"payload":{"id":${id},"amount":${base64(unscaled)},"paid_at":${paidAt},"due":19875,"cutoff":61200000,"refunds":${refunds},"retried_at":${retriedAt}}}`;
    await kafka.produce(topic, [
      { key: null, value: payment('9007199254740993', 123456789012345678n, 1717171717123, `[${base64(-50000n)}, null, ${base64(12345n)}]`, '[1717171717123, 0]') },
      { key: null, value: payment('2', -1n, null, '[]', 'null') },
    ]);
    const { sluice, groupId } = testSluice({ routes: [fieldsRoute(topic, table, 'connect-json', ['id', 'amount', 'paid_at', 'due', 'cutoff', 'refunds', 'retried_at'])] });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await rowsAsText(db, table)).toEqual([
      { id: '2', amount: '-0.0001', paid_at: null, due: '2024-06-01', cutoff: '17:00:00', refunds: '{}', retried_at: null },
      {
        id: '9007199254740993',
        amount: '12345678901234.5678',
        paid_at: '2024-05-31 16:08:37.123+00',
        due: '2024-06-01',
        cutoff: '17:00:00',
        refunds: '{-5.0000,NULL,1.2345}',
        retried_at: '{"2024-05-31 16:08:37.123+00","1970-01-01 00:00:00+00"}',
      },
    ]);
  });

  it('the registry stopped mid-stream: records that need it wait, nothing is dead-lettered, and everything lands once it is back', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'regout', table: 'regout_users', columns: 'id bigint PRIMARY KEY, name text, email text' });
    const v1 = { type: 'record', name: 'User', fields: [{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }] };
    const v2 = { ...v1, fields: [...v1.fields, { name: 'email', type: ['null', 'string'], default: null }] };
    const id1 = await registry.register(`${topic}-value`, 'AVRO', JSON.stringify(v1));
    const id2 = await registry.register(`${topic}-value`, 'AVRO', JSON.stringify(v2));
    const [e1, e2] = [avroEncoder(v1), avroEncoder(v2)];
    const { sluice, groupId, logs } = testSluice({
      schemaRegistry: { url: registry.url, requestTimeoutMs: 2_000 },
      routes: [fieldsRoute(topic, table, 'avro', ['id', 'name', 'email'])],
      kafka: { retryBackoffMaxMs: 1_000 },
    });
    await kafka.produce(topic, Array.from({ length: 100 }, (_, i) => ({ key: null, value: wire(id1, e1({ id: BigInt(i), name: `v1-${i}` })) })));
    await sluice.start();
    await waitFor('the first version landed', () => kafka.isFullyCommitted(groupId, topic));
    // `sluice check` asks the registry too.
    const checkEnv = {
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      SLUICE_ROUTES: JSON.stringify([fieldsRoute(topic, table, 'avro', ['id', 'name', 'email'])]),
      SLUICE_SCHEMA_REGISTRY_URL: registry.url,
      SLUICE_SCHEMA_REGISTRY_REQUEST_TIMEOUT_MS: '2000',
    };
    const before = await runCli(['check', '--json'], checkEnv);
    expect(before.code, before.stdout + before.stderr).toBe(0);
    expect(JSON.parse(before.stdout).schemaRegistry).toEqual({ url: registry.url, reachable: true, types: expect.arrayContaining(['AVRO', 'PROTOBUF', 'JSON']) });

    await registry.stop();
    const during = await runCli(['check', '--json'], checkEnv);
    expect(during.code).toBe(1);
    expect(JSON.parse(during.stdout).problems).toEqual([expect.stringMatching(/^schema registry: the schema registry at http:\/\/127.0.0.1:28081\/apis\/ccompat\/v7 cannot be reached/)]);
    // Records of a schema version sluice has not read yet: it must ask the registry, which is away.
    await kafka.produce(topic, Array.from({ length: 100 }, (_, i) => ({ key: null, value: wire(id2, e2({ id: BigInt(100 + i), name: `v2-${i}`, email: { string: `u${i}@example.com` } })) })));
    const registryFailures = () => logs.filter((l) => JSON.stringify(l).includes('SLUICE_SCHEMA_REGISTRY'));
    // The outage lasts until sluice has been failing on it for 10 s.
    await waitFor('sluice retrying on the registry for 10 s', () => {
      const failures = registryFailures();
      return failures.length >= 2 && Date.now() - Number(failures[0]!.time) >= 10_000;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    expect(await kafka.isFullyCommitted(groupId, topic)).toBe(false);
    await registry.start();
    await waitFor('everything landed after the registry came back', () => kafka.isFullyCommitted(groupId, topic), { timeoutMs: 90_000 });

    const { rows } = await db.query<{ n: number; emails: number }>(`SELECT count(*)::int AS n, count(email)::int AS emails FROM ${table}`);
    expect(rows[0]).toEqual({ n: 200, emails: 100 });
    expect(await kafka.recordCount(`${topic}.dlq`).catch(() => 0)).toBe(0);
    expect(sluice.state).toBe('running');
  });
});

