import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KafkaHelper, database, uniqueName, waitFor } from '../helpers/stack.js';
import { testSluice } from '../helpers/sluice.js';

describe('landing mode takes the topics people have', () => {
  it('records without a key land one row each, a key too large for a btree index lands, keyed records keep the last value; a replay changes nothing', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(2, 'events');
    const table = uniqueName('landing');
    // Random bytes do not compress: as an index entry this key is far over PostgreSQL's btree limit (~2.7 kB).
    const hugeKey = randomBytes(8_000);
    const records: Array<{ key: string | Buffer | null; value: string | null; partition: number }> = [];
    for (let i = 0; i < 50; i++) records.push({ key: null, value: JSON.stringify({ event: i }), partition: i % 2 });
    for (let i = 0; i < 20; i++) records.push({ key: `k${i % 10}`, value: JSON.stringify({ seq: i }), partition: i % 2 });
    records.push({ key: hugeKey, value: JSON.stringify({ huge: true }), partition: 0 });
    records.push({ key: 'k0', value: null, partition: 0 }); // a tombstone: k0's row goes
    await kafka.produce(topic, records);

    const snapshot = async () => {
      const db = await database();
      return (
        await db.query(
          `SELECT encode(key, 'hex') AS key, value::text AS value, kafka_partition, kafka_offset::text AS kafka_offset
             FROM ${table} WHERE topic = $1 ORDER BY kafka_partition, kafka_offset`,
          [topic],
        )
      ).rows as Array<{ key: string | null; value: string; kafka_partition: number; kafka_offset: string }>;
    };
    const run = async () => {
      const s = testSluice({ landing: { topics: [topic], table }, batching: { lingerMs: 50 } });
      await s.sluice.start();
      await waitFor('every offset committed, or sluice stopped', async () => s.sluice.state !== 'running' || (await kafka.isFullyCommitted(s.groupId, topic)));
      expect(s.sluice.status().error).toBeUndefined();
      expect(s.sluice.status().batching.deadLetteredRecords).toBe(0);
      await s.sluice.stop();
    };
    await run();
    const rows = await snapshot();
    const keyless = rows.filter((r) => r.key === null);
    expect(keyless.map((r) => JSON.parse(r.value).event).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const keyed = new Map(rows.filter((r) => r.key !== null).map((r) => [r.key, JSON.parse(r.value)]));
    const hex = (s: string) => Buffer.from(s).toString('hex');
    expect(keyed.get(hugeKey.toString('hex'))).toEqual({ huge: true });
    expect(keyed.has(hex('k0'))).toBe(false);
    for (let k = 1; k < 10; k++) expect(keyed.get(hex(`k${k}`))).toEqual({ seq: k + 10 });
    expect(rows.length).toBe(50 + 9 + 1);

    // A new group reads the whole topic again into the same table: the same rows, none added.
    await run();
    expect(await snapshot()).toEqual(rows);
  });
});
