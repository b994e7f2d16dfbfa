import { describe, expect, it } from 'vitest';
import { defaults } from '../../src/config/options.js';
import type { RouteOptions } from '../../src/index.js';
import { KafkaHelper, database, uniqueName, waitFor } from '../helpers/stack.js';
import { testSluice, type TestSluice } from '../helpers/sluice.js';

/**
 * Kafka offsets are not contiguous: a transaction leaves a control record after its records, an aborted one leaves
 * records a read_committed consumer never sees, and compaction removes records. Exactly-once delivery must go
 * through all of them without halting, skipping or repeating anything, and end with every offset at the log end.
 */

async function tables(): Promise<{ events: string; latest: string }> {
  const db = await database();
  const events = uniqueName('tx_events');
  const latest = uniqueName('tx_latest');
  await db.query(`CREATE TABLE ${events} (row_id bigserial PRIMARY KEY, id text NOT NULL, src_partition int NOT NULL, src_offset bigint NOT NULL)`);
  await db.query(`CREATE TABLE ${latest} (k text PRIMARY KEY, id text NOT NULL)`);
  return { events, latest };
}

function routes(topic: string, t: { events: string; latest: string }): RouteOptions[] {
  return [
    {
      topic,
      table: t.events,
      mode: 'append',
      columns: { id: 'id', src_partition: { from: 'partition' }, src_offset: { from: 'offset' } },
    },
    { topic, table: t.latest, key: ['k'], columns: { k: { from: 'key' }, id: 'id' } },
  ];
}

/** Waits until the group has committed every partition's log end, or sluice stopped running; answers which. */
async function settled(kafka: KafkaHelper, t: TestSluice, topic: string): Promise<'committed' | string> {
  return waitFor(
    'every offset committed at the log end, or sluice no longer running',
    async () => (t.sluice.state !== 'running' ? `${t.sluice.state}: ${t.sluice.status().error ?? ''}` : (await kafka.isFullyCommitted(t.groupId, topic)) && 'committed'),
    { timeoutMs: 60_000 },
  );
}

async function storedOffsets(groupId: string, topic: string): Promise<Map<number, string>> {
  const db = await database();
  const rows = await db.query<{ partition: number; next_offset: string }>(
    `SELECT partition, next_offset::text AS next_offset FROM ${defaults.offsetsTable} WHERE group_id = $1 AND topic = $2`,
    [groupId, topic],
  );
  return new Map(rows.rows.map((r) => [r.partition, r.next_offset]));
}

describe('offsets with gaps: transactions, aborted records and compaction', () => {
  it('a transactional topic with committed and aborted transactions: exact rows, no aborted record, every offset at the log end, no halt', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(2, 'tx');
    const t = await tables();
    const producer = await kafka.transactionalProducer();
    /** id → key of every committed record; ids of aborted ones. */
    const committed = new Map<string, string>();
    const aborted = new Set<string>();
    const latest = new Map<string, string>();
    let seq = 0;
    const logEnd = async () => [...(await kafka.endOffsets(topic)).values()].reduce((sum, o) => sum + Number(o), 0);
    const transaction = async (commit: boolean, count: number) => {
      const before = await logEnd();
      const tx = await producer.transaction();
      const messages = Array.from({ length: count }, () => {
        const n = seq++;
        // A key stays in one partition, so "the last value per key" is defined.
        return { key: `k${n % 13}`, value: JSON.stringify({ id: `id-${n}` }), partition: (n % 13) % 2, id: `id-${n}` };
      });
      await tx.send({ topic, messages: messages.map(({ key, value, partition }) => ({ key, value, partition })) });
      if (commit) {
        await tx.commit();
        for (const m of messages) {
          committed.set(m.id, m.key);
          latest.set(m.key, m.id);
        }
      } else {
        await tx.abort();
        for (const m of messages) aborted.add(m.id);
      }
      // The markers reach the partitions after the transaction ends; until then the log end (the last stable offset)
      // stays before its records. Each partition the transaction wrote gets its records and one marker.
      const partitions = new Set(messages.map((m) => m.partition)).size;
      await waitFor('the transaction markers written', async () => (await logEnd()) >= before + count + partitions);
    };
    // Transactions of different sizes, a third of them aborted: control records and aborted records everywhere.
    for (let r = 0; r < 12; r++) await transaction(r % 3 !== 1, 5 + ((r * 7) % 23));

    const s = testSluice({ routes: routes(topic, t), batching: { lingerMs: 50, maxBatchRecords: 7 } });
    await s.sluice.start();
    expect(await settled(kafka, s, topic)).toBe('committed');

    // A fetch that holds nothing but an aborted transaction and its marker must still move the offsets to the end.
    await transaction(false, 6);
    expect(await settled(kafka, s, topic)).toBe('committed');
    await transaction(true, 9);
    expect(await settled(kafka, s, topic)).toBe('committed');

    const db = await database();
    const events = await db.query<{ id: string }>(`SELECT id FROM ${t.events}`);
    const ids = events.rows.map((r) => r.id);
    expect(ids.length).toBe(committed.size);
    expect(new Set(ids)).toEqual(new Set(committed.keys()));
    expect(ids.filter((id) => aborted.has(id))).toEqual([]);
    const rows = await db.query<{ k: string; id: string }>(`SELECT k, id FROM ${t.latest}`);
    expect(new Map(rows.rows.map((r) => [r.k, r.id]))).toEqual(latest);
    expect(await storedOffsets(s.groupId, topic)).toEqual(await kafka.endOffsets(topic));
    expect(s.sluice.state).toBe('running');

    // An application's own kafkajs consumer in the same process still moves past a fetch of only control records:
    // what sluice changes in kafkajs applies to sluice's consumers alone.
    const plain = await kafka.plainConsumer(topic);
    await waitFor('the plain consumer at the end', () => plain.received.length === committed.size);
    await transaction(false, 4);
    await transaction(true, 2);
    await waitFor('the plain consumer past the aborted transaction', () => plain.received.length === committed.size, { timeoutMs: 30_000 });
    expect(plain.batches.length).toBe(new Set(plain.batches).size);
  });

  it('a compacted topic after compaction has run (gaps checked first): exact rows, every offset at the log end, no halt', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'compacted', {
      'cleanup.policy': 'compact',
      'segment.ms': '100',
      'min.cleanable.dirty.ratio': '0.01',
      'min.compaction.lag.ms': '0',
    });
    const db = await database();
    const table = uniqueName('compacted');
    await db.query(`CREATE TABLE ${table} (k text PRIMARY KEY, v int NOT NULL)`);
    // Unique keys with an often rewritten one between them: compaction leaves the unique ones with holes between.
    const expected = new Map<string, number>();
    const records: Array<{ key: string; value: string }> = [];
    for (let i = 0; i < 100; i++) {
      records.push({ key: `u${i}`, value: JSON.stringify({ v: i }) });
      records.push({ key: 'hot', value: JSON.stringify({ v: i }) });
      expected.set(`u${i}`, i);
      expected.set('hot', i);
    }
    await kafka.produce(topic, records.map((r) => ({ ...r, partition: 0 })), 10);
    // The active segment is never cleaned: later writes roll it (segment.ms) until the cleaner has made holes.
    let filler = 1_000;
    const offsets = await waitFor(
      'compaction to remove records between others',
      async () => {
        expected.set('hot', filler);
        await kafka.produce(topic, [{ key: 'hot', value: JSON.stringify({ v: filler++ }), partition: 0 }]);
        const read = (await kafka.readAll(topic)).map((r) => Number(r.offset));
        const holes = read.some((offset, i) => i > 0 && offset - read[i - 1]! > 1 && i < read.length - 1);
        return holes && read;
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    expect(offsets.length).toBeLessThan(Number((await kafka.endOffsets(topic)).get(0)));

    const s = testSluice({
      routes: [{ topic, table, key: ['k'], columns: { k: { from: 'key' }, v: 'v' } }],
      batching: { lingerMs: 50, maxBatchRecords: 5 },
    });
    await s.sluice.start();
    expect(await settled(kafka, s, topic)).toBe('committed');
    const rows = await db.query<{ k: string; v: number }>(`SELECT k, v FROM ${table}`);
    expect(new Map(rows.rows.map((r) => [r.k, r.v]))).toEqual(expected);
    expect(await storedOffsets(s.groupId, topic)).toEqual(await kafka.endOffsets(topic));
    expect(s.sluice.state).toBe('running');
  });
});
