import { describe, expect, it } from 'vitest';
import type { RouteOptions } from '../../src/index.js';
import { KafkaHelper, database, uniqueName, waitFor } from '../helpers/stack.js';
import { testSluice, type TestSluice } from '../helpers/sluice.js';

/**
 * The DLQ breaker judges a batch's poison share before its records are dead-lettered: a batch that would take the
 * DLQ's share of the window over maxDlqRatio is not sent, and sluice halts with it uncommitted. So the DLQ never
 * holds more than maxDlqRatio of a window of at least minRecords records, whether the poison arrives as a backlog
 * or a trickle.
 */

const breaker = { maxDlqRatio: 0.05, minRecords: 500, windowMs: 60_000 };

async function setup(prefix: string): Promise<{ kafka: KafkaHelper; topic: string; table: string; route: RouteOptions }> {
  const kafka = await KafkaHelper.connect();
  const topic = await kafka.createTopic(1, prefix);
  const db = await database();
  const table = uniqueName('orders');
  await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, n int NOT NULL)`);
  return { kafka, topic, table, route: { topic, table, key: ['id'], columns: { id: { from: 'key' }, n: 'n' } } };
}

const record = (i: number, poison: boolean) => ({ key: `k${i}`, value: poison ? `not json ${i}` : JSON.stringify({ n: i }) });

/** Committed offset and DLQ records once sluice has halted and its in-flight flushes have settled. */
async function afterHalt(kafka: KafkaHelper, s: TestSluice, topic: string): Promise<{ committed: number; dead: number }> {
  await waitFor('halted', () => s.sluice.state === 'halted');
  expect(s.sluice.status().error).toMatch(/^the DLQ breaker opened: \d+ of \d+ records/);
  return waitFor('in-flight flushes settled', async () => {
    const committed = Math.max(0, Number((await kafka.committedOffsets(s.groupId, topic)).get(0) ?? -1));
    const dead = await kafka.recordCount(`${topic}.dlq`);
    return s.sluice.status().batching.bufferedBytes === 0 && { committed, dead };
  });
}

describe('the DLQ breaker acts before the DLQ', () => {
  it('a backlog of 2,000 poison records: none reaches the DLQ, nothing is committed past them', async () => {
    const { kafka, topic, route } = await setup('backlog');
    await kafka.produce(topic, Array.from({ length: 2_000 }, (_, i) => record(i, true)));
    const s = testSluice({ routes: [route], batching: { lingerMs: 200 }, breaker });
    await s.sluice.start();
    const { committed, dead } = await afterHalt(kafka, s, topic);
    // A batch below minRecords is not judged; whatever went to the DLQ stays under it, and is all that is committed.
    expect(dead).toBeLessThan(breaker.minRecords);
    expect(committed).toBe(dead);
    await expect(s.sluice.stop()).rejects.toThrow('breaker');
  });

  it('a trickle of batches with 10 % poison: the DLQ never holds more than maxDlqRatio of minRecords or more', async () => {
    const { kafka, topic, route } = await setup('trickle');
    const s = testSluice({ routes: [route], batching: { lingerMs: 50 }, breaker });
    await s.sluice.start();
    // Batches of 100 records, one at a time: each is flushed (or refused) before the next arrives.
    for (let round = 0; round < 10 && s.sluice.state === 'running'; round++) {
      await kafka.produce(topic, Array.from({ length: 100 }, (_, i) => record(round * 100 + i, i % 10 === 0)));
      await waitFor('the round flushed, or sluice halted', async () => {
        const committed = Number((await kafka.committedOffsets(s.groupId, topic)).get(0) ?? -1);
        return s.sluice.state !== 'running' || committed === (round + 1) * 100;
      });
    }
    const { committed, dead } = await afterHalt(kafka, s, topic);
    expect(dead).toBe(committed / 10);
    // The batch that would have made 50 of 500 records (10 %) dead-lettered was refused, not sent.
    expect(committed >= breaker.minRecords && dead / committed > breaker.maxDlqRatio).toBe(false);
    await expect(s.sluice.stop()).rejects.toThrow('breaker');
  });
});
