import { describe, expect, it } from 'vitest';
import { KafkaHelper, database, uniqueName, waitFor } from '../helpers/stack.js';
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
});
