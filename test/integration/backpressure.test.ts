import { describe, expect, it } from 'vitest';
import { KafkaHelper, database, uniqueName, waitFor, topicAndTable } from '../helpers/stack.js';
import { testSluice } from '../helpers/sluice.js';

describe('backpressure', () => {
  it('keeps buffered bytes near maxBufferedBytes by pausing partitions while PostgreSQL is slow, and loses nothing', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(3, 'backlog');
    const db = await database();
    const table = uniqueName('slow');
    // A real slow sink: every statement on the table waits 30 ms.
    await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, body text NOT NULL)`);
    await db.query(
      `CREATE FUNCTION ${table}_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.03); RETURN NULL; END $$`,
    );
    await db.query(`CREATE TRIGGER slow AFTER INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${table}_slow()`);
    const body = 'x'.repeat(1_000);
    const records = Array.from({ length: 12_000 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ body }) }));
    await kafka.produce(topic, records, 100); // ~12 MB of backlog, in small record batches

    const maxBufferedBytes = 1024 * 1024;
    const maxBatchBytes = 64 * 1024;
    const { sluice, groupId } = testSluice({
      routes: [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, body: 'body' } }],
      batching: { lingerMs: 50, maxBatchRecords: 5_000, maxBatchBytes, maxBufferedBytes },
      database: { poolSize: 1 },
    });
    let peakBytes = 0;
    let sawPause = false;
    const sampler = setInterval(() => {
      const { batching } = sluice.status();
      peakBytes = Math.max(peakBytes, batching.bufferedBytes);
      sawPause ||= batching.pausedPartitions > 0;
    }, 2);
    try {
      await sluice.start();
      await waitFor('the backlog drained and committed', () => kafka.isFullyCommitted(groupId, topic), { timeoutMs: 120_000 });
    } finally {
      clearInterval(sampler);
    }
    expect(sawPause).toBe(true);
    // The cap, plus what one fetch can still deliver for each of the 3 partitions before the pause applies.
    expect(peakBytes).toBeLessThanOrEqual(maxBufferedBytes + 3 * 2 * maxBatchBytes);
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(12_000);
  });

  it('a partition stuck on a row lock holds at most half the buffer cap: the other partitions keep flowing', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 3, topic: 'stuck', table: 'stuck', columns: 'id text PRIMARY KEY, body text NOT NULL' });
    await db.query(`INSERT INTO ${table} VALUES ('p0-0', 'old')`);
    const body = 'x'.repeat(1_000);
    const records = (partition: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({ key: `p${partition}-${i}`, value: JSON.stringify({ body }), partition }));
    // Partition 0's first batch upserts p0-0, whose row this transaction holds: the flush waits on the lock.
    const locker = await database();
    await locker.query('BEGIN');
    await locker.query(`SELECT * FROM ${table} WHERE id = 'p0-0' FOR UPDATE`);
    await kafka.produce(topic, records(0, 3_000), 100); // ~3 MB for partition 0 alone, three times the cap

    const maxBufferedBytes = 1024 * 1024;
    const { sluice, groupId } = testSluice({
      routes: [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, body: 'body' } }],
      batching: { lingerMs: 50, maxBatchRecords: 100, maxBatchBytes: 64 * 1024, maxBufferedBytes },
      database: { statementTimeoutMs: 120_000 },
    });
    await sluice.start();
    await waitFor('partition 0 blocked, holding much of the buffer', () => sluice.status().batching.bufferedBytes > maxBufferedBytes / 3);
    await kafka.produce(topic, [...records(1, 2_000), ...records(2, 2_000)], 100);
    const committed = async (partition: number) => (await kafka.committedOffsets(groupId, topic)).get(partition);
    await waitFor('partitions 1 and 2 committed while partition 0 is still blocked', async () => {
      const [one, two] = await Promise.all([committed(1), committed(2)]);
      return one === '2000' && two === '2000';
    });
    expect(Number(await committed(0))).toBeLessThanOrEqual(0);
    expect(sluice.status().batching.bufferedBytes).toBeLessThanOrEqual(maxBufferedBytes + 3 * 2 * 64 * 1024);
    await locker.query('ROLLBACK');
    await waitFor('everything committed once the lock is gone', () => kafka.isFullyCommitted(groupId, topic));
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(7_000);
  });

  it('two partitions stuck on row locks together never starve the others, and what they buffered is fetched again', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 4, topic: 'stuck2', table: 'stuck', columns: 'id text PRIMARY KEY, body text NOT NULL' });
    await db.query(`INSERT INTO ${table} VALUES ('p0-0', 'old'), ('p1-0', 'old')`);
    const body = 'x'.repeat(1_000);
    const records = (partition: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({ key: `p${partition}-${i}`, value: JSON.stringify({ body }), partition }));
    // Partitions 0 and 1 each upsert a row this transaction holds first: both flushes wait on the lock.
    const locker = await database();
    await locker.query('BEGIN');
    await locker.query(`SELECT * FROM ${table} WHERE id IN ('p0-0', 'p1-0') FOR UPDATE`);
    await kafka.produce(topic, [...records(0, 3_000), ...records(1, 3_000)], 100); // ~3 MB each, three times the cap

    const maxBufferedBytes = 1024 * 1024;
    const maxBatchBytes = 64 * 1024;
    const { sluice, groupId, logs } = testSluice({
      routes: [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, body: 'body' } }],
      batching: { lingerMs: 50, maxBatchRecords: 100, maxBatchBytes, maxBufferedBytes },
      database: { statementTimeoutMs: 120_000 },
    });
    await sluice.start();
    const db2 = await database();
    await waitFor('both flushes waiting on the lock', async () => {
      const waiting = await db2.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = $1`, [`sluice ${groupId}`]);
      return waiting.rows[0].n === 2;
    });
    await waitFor('partitions 0 and 1 holding much of the buffer', () => sluice.status().batching.bufferedBytes > maxBufferedBytes / 2);
    let peakBytes = 0;
    const sampler = setInterval(() => (peakBytes = Math.max(peakBytes, sluice.status().batching.bufferedBytes)), 2);
    await kafka.produce(topic, [...records(2, 2_000), ...records(3, 2_000)], 100);
    const committed = async (partition: number) => (await kafka.committedOffsets(groupId, topic)).get(partition);
    try {
      await waitFor('partitions 2 and 3 committed while 0 and 1 are still blocked', async () => {
        const [two, three] = await Promise.all([committed(2), committed(3)]);
        return two === '2000' && three === '2000';
      });
    } finally {
      clearInterval(sampler);
    }
    expect([Number(await committed(0)), Number(await committed(1))]).toEqual([-1, -1]);
    // The stuck partitions gave up what they had buffered past their batch in flight…
    expect(logs.filter((l) => String(l.msg).startsWith('buffer shed')).map((l) => l.partition)).toEqual(expect.arrayContaining([0, 1]));
    // …so memory stayed within the cap, plus the batch in flight of each stuck partition, plus one fetch per partition.
    expect(peakBytes).toBeLessThanOrEqual(maxBufferedBytes + 2 * maxBatchBytes + 4 * 2 * maxBatchBytes);
    await locker.query('ROLLBACK');
    await waitFor('everything committed once the lock is gone', () => kafka.isFullyCommitted(groupId, topic));
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(10_000);
  });
});
