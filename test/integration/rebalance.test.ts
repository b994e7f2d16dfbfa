import { describe, expect, it } from 'vitest';
import type { FlushEvent } from '../../src/events.js';
import { KafkaHelper, database, uniqueName, waitFor } from '../helpers/stack.js';
import { testSluice } from '../helpers/sluice.js';

/**
 * A member joining the group makes every member rejoin (kafkajs speaks the eager protocol). With the sticky assigner
 * and exactly-once delivery, a partition that stays with its member keeps its buffer and its flush in flight: nothing
 * is fetched twice and no batch is rolled back.
 */
describe('rebalances keep what did not move', () => {
  it('a member joining leaves the first its partition, with its buffer and its flush in flight; every record is fetched once', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'kept');
    const db = await database();
    const table = uniqueName('kept');
    // An append table shows a record written twice; every statement waits 200 ms, so that batches are buffered and
    // in flight while the group rebalances.
    await db.query(`CREATE TABLE ${table} (row_id bigserial PRIMARY KEY, src_offset bigint NOT NULL)`);
    await db.query(`CREATE FUNCTION ${table}_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.2); RETURN NULL; END $$`);
    await db.query(`CREATE TRIGGER slow AFTER INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${table}_slow()`);
    const records = 3_000;
    await kafka.produce(topic, Array.from({ length: records }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ i }) })));
    const routes = [{ topic, table, mode: 'append' as const, columns: { src_offset: { from: 'offset' as const } } }];
    const batching = { lingerMs: 50, maxBatchRecords: 100 };

    const first = testSluice({ routes, batching });
    const flushes: FlushEvent[] = [];
    first.sluice.events.on('flush', (event) => flushes.push(event));
    await first.sluice.start();
    await waitFor('the first batches written', () => flushes.length >= 2);

    const second = testSluice({ routes, batching, groupId: first.groupId });
    await second.sluice.start();
    const joins = () => first.logs.filter((line) => line.msg === 'joined the group');
    await waitFor('the first member rejoined', () => joins().length >= 2);
    const rejoin = joins()[1]!;
    expect(rejoin.kept).toEqual([`${topic}:0`]); // sticky: the partition stayed
    expect(second.logs.find((line) => line.msg === 'joined the group')?.assigned).toEqual([]);
    const flushedBeforeRejoin = flushes.length;
    expect(flushedBeforeRejoin).toBeLessThan(records / batching.maxBatchRecords); // the rebalance came mid-stream

    await waitFor('every record committed', () => kafka.isFullyCommitted(first.groupId, topic), { timeoutMs: 60_000 });
    const { rows, distinct } = (await db.query(`SELECT count(*)::int AS rows, count(DISTINCT src_offset)::int AS distinct FROM ${table}`)).rows[0];
    expect({ rows, distinct }).toEqual({ rows: records, distinct: records });
    // Fetched once: the buffer was kept, not dropped and read again. Written in order, each batch once.
    expect(first.sluice.status().batching.consumedRecords).toBe(records);
    expect(second.sluice.status().batching.consumedRecords).toBe(0);
    let next = 0n;
    for (const flush of flushes) {
      expect(BigInt(flush.fromOffset)).toBe(next);
      next = BigInt(flush.toOffset);
    }
    expect(next).toBe(BigInt(records));
  });
});
