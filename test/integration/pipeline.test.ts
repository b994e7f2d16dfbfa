import { describe, expect, it } from 'vitest';
import type { FlushEvent, RouteOptions } from '../../src/index.js';
import { KafkaHelper, database, uniqueName, waitFor, topicAndTable } from '../helpers/stack.js';
import { testSluice } from '../helpers/sluice.js';

interface Order {
  id: string;
  name: string;
  amount: number;
  version: number;
}

async function ordersTable(): Promise<string> {
  const db = await database();
  const table = uniqueName('orders');
  await db.query(
    `CREATE TABLE ${table} (id text PRIMARY KEY, name text NOT NULL, amount numeric(12,2), version int NOT NULL,
       payload jsonb, src_partition int, src_offset bigint)`,
  );
  return table;
}

function ordersRoute(topic: string, table: string): RouteOptions {
  return {
    topic,
    table,
    key: ['id'],
    columns: {
      id: { from: 'key' },
      name: { from: 'field' },
      amount: { from: 'field' },
      version: { from: 'field' },
      payload: { from: 'value' },
      src_partition: { from: 'partition' },
      src_offset: { from: 'offset' },
    },
  };
}

async function tableSnapshot(table: string): Promise<Array<Record<string, unknown>>> {
  const db = await database();
  return (await db.query(`SELECT * FROM ${table} ORDER BY id`)).rows;
}

describe('pipeline: consumer group → micro-batches → idempotent upserts → offsets after flush', () => {
  it('lands 20,000 records over 3 partitions exactly (last value per key wins), commits the end offsets, and a full replay changes nothing', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(3, 'orders');
    const table = await ordersTable();
    const expected = new Map<string, Order>();
    const records = [];
    for (let i = 0; i < 20_000; i++) {
      const order: Order = { id: `order-${i % 5_000}`, name: `name-${i}`, amount: (i % 1000) + 0.25, version: i };
      expected.set(order.id, order);
      records.push({ key: order.id, value: JSON.stringify(order) });
    }
    await kafka.produce(topic, records);

    const first = testSluice({ routes: [ordersRoute(topic, table)], batching: { lingerMs: 100, maxBatchRecords: 1_000 } });
    await first.sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(first.groupId, topic));
    await first.sluice.stop();
    expect(first.sluice.state).toBe('stopped');

    const db = await database();
    const rows = (await db.query<{ id: string; name: string; amount: string; version: number }>(
      `SELECT id, name, amount, version FROM ${table}`,
    )).rows;
    expect(rows).toHaveLength(expected.size);
    for (const row of rows) {
      const order = expected.get(row.id)!;
      expect({ id: row.id, name: row.name, amount: Number(row.amount), version: row.version }).toEqual(order);
    }
    expect(await kafka.committedOffsets(first.groupId, topic)).toEqual(await kafka.endOffsets(topic));

    // Replay the whole topic through the same group: every row must come out identical. (At-least-once delivery
    // follows the group's committed offsets, which the reset moved; exactly-once would resume from the stored ones.)
    const before = await tableSnapshot(table);
    await kafka.admin.resetOffsets({ groupId: first.groupId, topic, earliest: true });
    const replay = testSluice({
      groupId: first.groupId,
      delivery: 'at-least-once',
      routes: [ordersRoute(topic, table)],
      batching: { lingerMs: 100, maxBatchRecords: 1_000 },
    });
    let replayed = 0;
    replay.sluice.events.on('flush', (e) => (replayed += e.records));
    await replay.sluice.start();
    await waitFor('the replay consumed the whole topic', () => replayed === 20_000);
    await waitFor('all offsets committed again', () => kafka.isFullyCommitted(first.groupId, topic));
    await replay.sluice.stop();
    expect(await tableSnapshot(table)).toEqual(before);
  });

  it('reduces many records with one key inside a batch to the last one, without a conflict error', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'dupes');
    const table = await ordersTable();
    const records = Array.from({ length: 500 }, (_, i) => ({
      key: i % 2 === 0 ? 'hot' : `cold-${i}`,
      value: JSON.stringify({ name: `n${i}`, amount: i, version: i }),
    }));
    await kafka.produce(topic, records);
    const { sluice, groupId } = testSluice({ routes: [ordersRoute(topic, table)], batching: { lingerMs: 500, maxBatchRecords: 500 } });
    const flushes: FlushEvent[] = [];
    sluice.events.on('flush', (e) => flushes.push(e));
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(sluice.state).toBe('running');
    // One batch held all 250 records of the hot key.
    expect(flushes).toHaveLength(1);
    expect(flushes[0]!.upserted).toBe(251);
    expect(flushes[0]!.skipped).toBe(249);
    const db = await database();
    const hot = (await db.query(`SELECT name, version FROM ${table} WHERE id = 'hot'`)).rows;
    expect(hot).toEqual([{ name: 'n498', version: 498 }]);
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(251);
  });

  it('deletes the row of a tombstone, and a later value for the key brings it back', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'tombstones');
    const table = await ordersTable();
    const value = (name: string) => JSON.stringify({ name, amount: 1, version: 1 });
    await kafka.produce(topic, [
      { key: 'a', value: value('a1') },
      { key: 'b', value: value('b1') },
      { key: 'c', value: value('c1') },
    ]);
    const { sluice, groupId } = testSluice({ routes: [ordersRoute(topic, table)], batching: { lingerMs: 50 } });
    await sluice.start();
    await waitFor('first records committed', () => kafka.isFullyCommitted(groupId, topic));
    // Tombstones in a later batch delete committed rows; inside one batch the last record per key decides.
    await kafka.produce(topic, [
      { key: 'a', value: null },
      { key: 'b', value: null },
      { key: 'b', value: value('b2') },
      { key: 'c', value: value('c2') },
      { key: 'c', value: null },
    ]);
    await waitFor('tombstones committed', () => kafka.isFullyCommitted(groupId, topic));
    const db = await database();
    expect((await db.query(`SELECT id, name FROM ${table} ORDER BY id`)).rows).toEqual([{ id: 'b', name: 'b2' }]);
  });

  it('flushes a lone record once lingerMs has passed, and a burst as soon as it fills a batch', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'timing');
    const table = await ordersTable();
    const lingerMs = 300;
    const { sluice, groupId } = testSluice({
      routes: [ordersRoute(topic, table)],
      batching: { lingerMs, maxBatchRecords: 100 },
    });
    const flushes: FlushEvent[] = [];
    sluice.events.on('flush', (e) => flushes.push(e));
    await sluice.start();
    await waitFor('partition assigned', () => sluice.status().state === 'running' && true);

    await kafka.produce(topic, [{ key: 'lone', value: JSON.stringify({ name: 'x', amount: 1, version: 1 }) }]);
    await waitFor('the lone record flushed', () => flushes.length === 1);
    expect(flushes[0]).toMatchObject({ records: 1, reason: 'linger' });
    // Timer granularity and the fetch hand-off allow a small margin; never much more than the linger.
    expect(flushes[0]!.waitedMs).toBeGreaterThanOrEqual(lingerMs - 5);
    expect(flushes[0]!.waitedMs).toBeLessThan(lingerMs + 150);

    const burst = Array.from({ length: 100 }, (_, i) => ({ key: `burst-${i}`, value: JSON.stringify({ name: 'b', amount: i, version: i }) }));
    await kafka.produce(topic, burst, 100);
    await waitFor('the burst flushed', () => flushes.length >= 2);
    expect(flushes[1]).toMatchObject({ records: 100, reason: 'count' });
    expect(flushes[1]!.waitedMs).toBeLessThan(lingerMs);
    await waitFor('all committed', () => kafka.isFullyCommitted(groupId, topic));
  });

  it('writes the rows a library transform returns, several per record, reduced to the last per key', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'transform', table: 'lines', columns: 'order_id text, line int, sku text NOT NULL, PRIMARY KEY (order_id, line)' });
    const order = (id: string, skus: string[]) => ({ key: id, value: JSON.stringify({ id, skus }) });
    await kafka.produce(topic, [order('o1', ['a', 'b']), order('o2', ['c']), order('o1', ['d', 'e', 'f']), { key: 'skip', value: null }]);
    const { sluice, groupId } = testSluice({
      routes: [
        {
          topic,
          table,
          key: ['order_id', 'line'],
          transform: (record) => {
            if (record.value === null) return null;
            const o = JSON.parse(record.value.toString('utf8')) as { id: string; skus: string[] };
            return o.skus.map((sku, line) => ({ order_id: o.id, line, sku }));
          },
        },
      ],
      batching: { lingerMs: 200 },
    });
    await sluice.start();
    await waitFor('all committed', () => kafka.isFullyCommitted(groupId, topic));
    expect((await db.query(`SELECT order_id, line, sku FROM ${table} ORDER BY order_id, line`)).rows).toEqual([
      { order_id: 'o1', line: 0, sku: 'd' },
      { order_id: 'o1', line: 1, sku: 'e' },
      { order_id: 'o1', line: 2, sku: 'f' },
      { order_id: 'o2', line: 0, sku: 'c' },
    ]);
  });

  it('reads Kafka Connect JsonConverter envelopes (schemas.enable=true): fields and the stored value come from the payload', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'connect', table: 'connect_orders', columns: 'id text PRIMARY KEY, amount double precision NOT NULL, payload jsonb' });
    const schema = {
      type: 'struct',
      name: 'orders.Order',
      optional: false,
      fields: [
        { field: 'id', type: 'string', optional: false },
        { field: 'amount', type: 'double', optional: false },
      ],
    };
    const envelope = (id: string, amount: number) => ({ key: id, value: JSON.stringify({ schema, payload: { id, amount } }) });
    await kafka.produce(topic, [envelope('a', 1.5), envelope('b', 2), envelope('a', 3.25)]);
    const { sluice, groupId } = testSluice({
      routes: [{ topic, table, key: ['id'], format: 'connect-json', columns: { id: 'id', amount: 'amount', payload: { from: 'value' } } }],
      batching: { lingerMs: 50 },
    });
    await sluice.start();
    await waitFor('all committed', () => kafka.isFullyCommitted(groupId, topic));
    expect((await db.query(`SELECT id, amount, payload FROM ${table} ORDER BY id`)).rows).toEqual([
      { id: 'a', amount: 3.25, payload: { id: 'a', amount: 3.25 } },
      { id: 'b', amount: 2, payload: { id: 'b', amount: 2 } },
    ]);
  });

  it('an event listener that throws or rejects is reported, and never stops the pipeline or leaves a batch uncommitted', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'listener');
    const table = await ordersTable();
    await kafka.produce(topic, Array.from({ length: 50 }, (_, i) => ({ key: `order-${i}`, value: JSON.stringify({ id: `order-${i}`, name: 'n', amount: 1, version: i }) })));
    const { sluice, groupId, logs } = testSluice({ routes: [ordersRoute(topic, table)], batching: { lingerMs: 50, maxBatchRecords: 10 } });
    sluice.events.on('flush', () => {
      throw new Error('a listener bug');
    });
    sluice.events.on('commit', async () => {
      throw new Error('an async listener bug');
    });
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(sluice.state).toBe('running');
    expect((await tableSnapshot(table)).length).toBe(50);
    await waitFor('both listener errors reported', () =>
      ['a listener bug', 'an async listener bug'].every((m) => logs.some((l) => l.level === 50 && String(l.msg).includes(m))),
    );
  });

  it('partitions added to a subscribed topic are consumed within kafka.metadataMaxAgeMs', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'grows');
    const table = await ordersTable();
    const order = (i: number) => JSON.stringify({ id: `order-${i}`, name: 'n', amount: 1, version: i });
    const { sluice, groupId } = testSluice({ routes: [ordersRoute(topic, table)], batching: { lingerMs: 50 }, kafka: { metadataMaxAgeMs: 2_000 } });
    await sluice.start();
    await kafka.produce(topic, [{ key: 'order-0', value: order(0), partition: 0 }]);
    await waitFor('partition 0 committed', () => kafka.isFullyCommitted(groupId, topic));
    await kafka.admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] });
    const addedAt = Date.now();
    // A fresh producer: the helper's own would not know partition 1 yet (kafkajs drops records for unknown partitions).
    await (await KafkaHelper.connect()).produce(topic, [{ key: 'order-1', value: order(1), partition: 1 }]);
    expect((await kafka.endOffsets(topic)).get(1)).toBe('1');
    await waitFor('the new partition consumed and committed', async () => (await kafka.committedOffsets(groupId, topic)).get(1) === '1', { timeoutMs: 30_000 });
    expect(Date.now() - addedAt).toBeLessThan(20_000);
    expect((await tableSnapshot(table)).map((r) => r.id)).toEqual(['order-0', 'order-1']);
  });
});
