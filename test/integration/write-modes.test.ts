import { describe, expect, it } from 'vitest';
import { KafkaHelper, database, uniqueName, waitFor, topicAndTable } from '../helpers/stack.js';
import { testSluice } from '../helpers/sluice.js';

describe('write modes: append, and versioned upserts', () => {
  it('append: every record becomes exactly one row, repeated keys and all', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 2, topic: 'events', table: 'events', columns: 'id bigserial PRIMARY KEY, name text, src_partition int, src_offset bigint' });
    const records = Array.from({ length: 1_000 }, (_, i) => ({ key: `k${i % 10}`, value: JSON.stringify({ name: `n${i}` }) }));
    await kafka.produce(topic, records);
    const { sluice, groupId } = testSluice({
      routes: [{ topic, table, mode: 'append', columns: { name: 'name', src_partition: { from: 'partition' }, src_offset: { from: 'offset' } } }],
      batching: { lingerMs: 100 },
    });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));
    const rows = (await db.query<{ name: string; n: number }>(`SELECT name, count(*)::int AS n FROM ${table} GROUP BY name`)).rows;
    expect(rows).toHaveLength(1_000);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    const coordinates = (await db.query(`SELECT count(DISTINCT (src_partition, src_offset))::int AS n FROM ${table}`)).rows[0].n;
    expect(coordinates).toBe(1_000);
  });

  it('versioned upsert: a late or replayed older record never overwrites newer data, and is counted as stale', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'versioned', table: 'accounts', columns: 'id text PRIMARY KEY, balance int NOT NULL, version int NOT NULL' });
    const route = { topic, table, key: ['id'], version: 'version', columns: { id: { from: 'key' as const }, balance: 'balance', version: 'version' } };
    const record = (id: string, version: number) => ({ key: id, value: JSON.stringify({ balance: version * 10, version }) });
    // Batch one: within it, a newer record before an older one (a3 then a1), and b's versions in order.
    await kafka.produce(topic, [record('a', 3), record('a', 1), record('b', 1), record('b', 2)]);
    const { sluice, groupId } = testSluice({ routes: [route], batching: { lingerMs: 100 } });
    let stale = 0;
    sluice.events.on('flush', (flush) => (stale += flush.stale));
    await sluice.start();
    await waitFor('first batch committed', () => kafka.isFullyCommitted(groupId, topic));
    // Later: a late older record for a, a newer one for b, and an exact replay of b@2.
    await kafka.produce(topic, [record('a', 2), record('b', 5), record('b', 2)]);
    await waitFor('second batch committed', () => kafka.isFullyCommitted(groupId, topic));

    const rows = (await db.query(`SELECT id, balance, version FROM ${table} ORDER BY id`)).rows;
    expect(rows).toEqual([
      { id: 'a', balance: 30, version: 3 },
      { id: 'b', balance: 50, version: 5 },
    ]);
    // a@1 and b@1 lost to newer records of their batch; a@2 and b@2 to newer stored rows (or the batch's b@5).
    expect(stale).toBe(4);
    expect(sluice.status().batching.staleRecords).toBe(4);

    // A full replay of the topic (at-least-once delivery follows the group's reset offsets) changes nothing.
    await sluice.stop();
    await kafka.admin.resetOffsets({ groupId, topic, earliest: true });
    const replay = testSluice({ groupId, delivery: 'at-least-once', routes: [route], batching: { lingerMs: 100 } });
    await replay.sluice.start();
    await waitFor('replay committed', () => kafka.isFullyCommitted(groupId, topic));
    expect((await db.query(`SELECT id, balance, version FROM ${table} ORDER BY id`)).rows).toEqual(rows);
  });

  it('a transform route without columns writes only the columns each row has: the table fills in the rest', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'transform_defaults');
    const db = await database();
    const table = uniqueName('events');
    await db.query(
      `CREATE TABLE ${table} (id bigserial PRIMARY KEY, name text NOT NULL, kind text NOT NULL DEFAULT 'plain', received_at timestamptz NOT NULL DEFAULT now())`,
    );
    await kafka.produce(topic, Array.from({ length: 20 }, (_, i) => ({ key: null, value: JSON.stringify({ name: `n${i}`, special: i % 5 === 0 }) })));
    const { sluice, groupId } = testSluice({
      routes: [
        {
          topic,
          table,
          mode: 'append',
          transform: (record) => {
            const { name, special } = JSON.parse(record.value!.toString()) as { name: string; special: boolean };
            return special ? { name, kind: 'special' } : { name };
          },
        },
      ],
      batching: { lingerMs: 50 },
    });
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    const rows = (await db.query(`SELECT id, name, kind, received_at FROM ${table} ORDER BY id`)).rows as Array<{ id: string; kind: string; received_at: Date | null }>;
    expect(rows).toHaveLength(20);
    expect(rows.filter((r) => r.kind === 'special')).toHaveLength(4);
    expect(rows.filter((r) => r.kind === 'plain')).toHaveLength(16);
    expect(rows.every((r) => r.received_at !== null && r.id !== null)).toBe(true);
    expect(sluice.status().batching.deadLetteredRecords).toBe(0);
  });
});
