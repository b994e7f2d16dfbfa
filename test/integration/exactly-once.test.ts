import { describe, expect, it, onTestFinished } from 'vitest';
import { defaults } from '../../src/config/options.js';
import { OffsetStore } from '../../src/sinks/offset-store.js';
import { KafkaHelper, brokers, database, databaseUrl, lockTable, uniqueName, waitFor, waitForSluiceOnLock } from '../helpers/stack.js';
import { spawnSluice } from '../helpers/process.js';
import { testSluice } from '../helpers/sluice.js';

/** An append table: a record written twice shows as two rows with the same coordinates. */
async function appendTable(): Promise<string> {
  const db = await database();
  const table = uniqueName('events');
  await db.query(`CREATE TABLE ${table} (row_id bigserial PRIMARY KEY, id text NOT NULL, src_partition int NOT NULL, src_offset bigint NOT NULL)`);
  return table;
}

const appendRoute = (topic: string, table: string) => ({
  topic,
  table,
  mode: 'append' as const,
  columns: { id: 'id', src_partition: { from: 'partition' as const }, src_offset: { from: 'offset' as const } },
});

async function duplicates(table: string): Promise<{ rows: number; distinct: number }> {
  const db = await database();
  return (
    await db.query<{ rows: number; distinct: number }>(
      `SELECT count(*)::int AS rows, count(DISTINCT (src_partition, src_offset))::int AS distinct FROM ${table}`,
    )
  ).rows[0]!;
}

describe('exactly-once delivery: offsets stored with the data, and fencing', () => {
  it.each(['exactly-once', 'at-least-once'] as const)(
    'killed between the PostgreSQL commit and the Kafka commit (%s): what the append table shows after a restart',
    async (delivery) => {
      const kafka = await KafkaHelper.connect();
      const topic = await kafka.createTopic(2, 'crash');
      const table = await appendTable();
      const groupId = uniqueName('group');
      await kafka.produce(topic, Array.from({ length: 2_000 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `id-${i}` }) })));
      const env = {
        KAFKA_BROKERS: brokers().join(','),
        DATABASE_URL: databaseUrl(),
        SLUICE_GROUP_ID: groupId,
        SLUICE_DELIVERY: delivery,
        SLUICE_ROUTES: JSON.stringify([appendRoute(topic, table)]),
        SLUICE_MAX_BATCH_RECORDS: '100',
        SLUICE_LINGER_MS: '50',
        SLUICE_SESSION_TIMEOUT_MS: '6000',
        SLUICE_HEARTBEAT_INTERVAL_MS: '1000',
      };
      const first = spawnSluice({ ...env, SLUICE_TEST_CRASH_AFTER_DB_COMMIT: '3' });
      expect((await first.exited).signal).toBe('SIGKILL');
      const afterCrash = await duplicates(table);
      expect(afterCrash.rows).toBeGreaterThanOrEqual(300); // three batches committed in PostgreSQL…
      expect(await kafka.isFullyCommitted(groupId, topic)).toBe(false); // …the last of them never reached Kafka

      const second = spawnSluice(env);
      await waitFor('every offset committed after the restart', () => kafka.isFullyCommitted(groupId, topic), { timeoutMs: 90_000 });
      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
      const after = await duplicates(table);
      expect(after.distinct).toBe(2_000);
      if (delivery === 'exactly-once') expect(after.rows).toBe(2_000);
      // At-least-once replays the batch whose offset never reached Kafka: the append table shows it twice.
      else expect(after.rows).toBeGreaterThan(2_000);
    },
  );

  it('a member whose claim was taken over cannot write: its flush is refused and rolled back', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'zombie');
    const table = await appendTable();
    const db = await database();
    const { sluice, groupId, logs } = testSluice({ routes: [appendRoute(topic, table)], batching: { lingerMs: 50 } });
    await sluice.start();
    const row = `group_id = '${groupId}' AND topic = '${topic}' AND partition = 0`;
    await waitFor('the partition claimed', async () => (await db.query(`SELECT claim FROM sluice_offsets WHERE ${row}`)).rows.length === 1);

    // Hold the partition's offsets row, so that sluice's next flush waits on it inside its transaction…
    await db.query('BEGIN');
    await db.query(`SELECT * FROM sluice_offsets WHERE ${row} FOR UPDATE`);
    await kafka.produce(topic, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `id-${i}` }) })));
    await waitForSluiceOnLock(groupId, 'the flush waiting on the offsets row');
    // …then claim it as a new owner would, unknown to this member (a long pause, a network split).
    await db.query(`UPDATE sluice_offsets SET claim = claim + 1 WHERE ${row}`);
    await db.query('COMMIT');

    await waitFor('the flush refused', () => logs.some((l) => String(l.msg).startsWith('batch refused: another member has claimed the partition')));
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);
    expect((await db.query(`SELECT next_offset FROM sluice_offsets WHERE ${row}`)).rows[0].next_offset).toBeNull();
    expect(sluice.state).toBe('running');
  });

  it.each(['deleted', 'claimed by hand'] as const)(
    'the offsets row %s with no rebalance following: refused flushes halt sluice within twice the session timeout, naming the row',
    async (edit) => {
      const kafka = await KafkaHelper.connect();
      const topic = await kafka.createTopic(1, 'edited');
      const table = await appendTable();
      const db = await database();
      const { sluice, groupId } = testSluice({
        routes: [appendRoute(topic, table)],
        batching: { lingerMs: 50 },
        kafka: { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 1_000 },
      });
      await sluice.start();
      const row = `group_id = '${groupId}' AND topic = '${topic}' AND partition = 0`;
      await waitFor('the partition claimed', async () => (await db.query(`SELECT claim FROM sluice_offsets WHERE ${row}`)).rows.length === 1);
      await db.query(edit === 'deleted' ? `DELETE FROM sluice_offsets WHERE ${row}` : `UPDATE sluice_offsets SET claim = claim + 1 WHERE ${row}`);
      const startedAt = Date.now();
      await kafka.produce(topic, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `id-${i}` }) })));
      await waitFor('halted', () => sluice.state === 'halted', { timeoutMs: 30_000 });
      expect(Date.now() - startedAt).toBeLessThan(2 * 6_000 + 3_000);
      expect(sluice.status().error).toContain(`${topic}[0]`);
      expect(sluice.status().error).toContain(edit === 'deleted' ? ') is gone' : 'holds claim');
      expect(sluice.status().error).toContain(defaults.offsetsTable);
      expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);
    },
  );

  it('a member frozen inside its flush (SIGSTOP) holds up the new owner no longer than the session and idle-in-transaction timeouts', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'frozen');
    const table = await appendTable();
    const db = await database();
    const groupId = uniqueName('group');
    const env = {
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      SLUICE_GROUP_ID: groupId,
      SLUICE_ROUTES: JSON.stringify([appendRoute(topic, table)]),
      SLUICE_LINGER_MS: '50',
      SLUICE_SESSION_TIMEOUT_MS: '6000',
      SLUICE_HEARTBEAT_INTERVAL_MS: '1000',
      SLUICE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '3000',
    };
    const a = spawnSluice(env);
    onTestFinished(() => void a.child.kill('SIGKILL'));
    const row = `group_id = '${groupId}' AND topic = '${topic}' AND partition = 0`;
    await waitFor('A claimed the partition', async () => (await db.query(`SELECT 1 FROM sluice_offsets WHERE ${row}`)).rows.length === 1);
    // A's next flush waits on this lock inside its transaction, after its fence has locked the offsets row.
    const lock = await lockTable(table);
    await kafka.produce(topic, [{ key: 'k', value: JSON.stringify({ id: 'only' }) }]);
    await waitForSluiceOnLock(groupId, 'A waiting inside its flush');
    a.child.kill('SIGSTOP');
    const frozenAt = Date.now();
    await lock.release(); // A's statement ends; A, frozen, sits in its open transaction with the locks
    const b = spawnSluice(env);
    await waitFor('B wrote the record', async () => (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n === 1, { timeoutMs: 60_000 });
    const tookMs = Date.now() - frozenAt;
    console.log(`frozen member: the new owner wrote ${tookMs} ms after the freeze (session timeout 6 s, idle-in-transaction timeout 3 s)`);
    expect(tookMs).toBeLessThan(6_000 + 3_000 + 8_000);
    a.child.kill('SIGKILL');
    b.child.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
    expect((await duplicates(table)).rows).toBe(1);
  });

  it('where a claimed partition resumes counts as committed at once: /status and lag are right before any flush', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'resume');
    const table = await appendTable();
    const db = await database();
    const groupId = uniqueName('group');
    await kafka.produce(topic, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `id-${i}` }) })));
    // As if an earlier run had written all ten records.
    await new OffsetStore(defaults.offsetsTable, groupId).ensureTable(db);
    await db.query(`INSERT INTO ${defaults.offsetsTable} (group_id, topic, partition, next_offset, claim) VALUES ($1, $2, 0, 10, 1)`, [groupId, topic]);
    const { sluice } = testSluice({ groupId, routes: [appendRoute(topic, table)], batching: { lingerMs: 50 } });
    await sluice.start();
    await waitFor('the stored position committed and shown', () => sluice.status().committed[`${topic}:0`] === '10');
    await waitFor('lag 0', () => sluice.status().lag === 0);
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);
  });

  it('halts, naming the partition and both offsets, when Kafka cannot serve the stored position (a topic created again)', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'recreated');
    const table = await appendTable();
    const db = await database();
    const groupId = uniqueName('group');
    await kafka.produce(topic, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `id-${i}` }) })));
    // As if the topic had held 1,000 records before it was deleted and created again.
    await new OffsetStore(defaults.offsetsTable, groupId).ensureTable(db);
    await db.query(`INSERT INTO ${defaults.offsetsTable} (group_id, topic, partition, next_offset, claim) VALUES ($1, $2, 0, 1000, 1)`, [groupId, topic]);
    const { sluice } = testSluice({ groupId, routes: [appendRoute(topic, table)], batching: { lingerMs: 50 } });
    await sluice.start();
    await waitFor('halted', () => sluice.state === 'halted');
    expect(sluice.status().error).toBe(
      `${topic}[0]: the offsets stored with the data end at 1000, but Kafka serves the partition from 0: the stored offset is past the end of ` +
        'the partition (was the topic deleted and created again?). Check, then set or delete the partition\'s row in the offsets table and restart',
    );
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);
  });

  it('one partition whose offsets row is locked does not hold up the claims of the others; it is claimed once the lock goes', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(3, 'claims');
    const table = await appendTable();
    const db = await database();
    const groupId = uniqueName('group');
    const records = (from: number) =>
      [0, 1, 2].flatMap((partition) =>
        Array.from({ length: 10 }, (_, i) => ({ partition, key: `k${partition}-${from + i}`, value: JSON.stringify({ id: `id-${partition}-${from + i}` }) })),
      );
    // Rows for all three partitions, as an earlier member left them.
    await kafka.produce(topic, records(0));
    await new OffsetStore(defaults.offsetsTable, groupId).ensureTable(db);
    await db.query(
      `INSERT INTO ${defaults.offsetsTable} (group_id, topic, partition, next_offset, claim) SELECT $1, $2, p, 10, 1 FROM generate_series(0, 2) AS p`,
      [groupId, topic],
    );
    await kafka.produce(topic, records(10));
    // A session (a member frozen inside its flush) holds partition 0's row.
    const holder = await database();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM ${defaults.offsetsTable} WHERE group_id = $1 AND topic = $2 AND partition = 0 FOR UPDATE`, [groupId, topic]);

    const { sluice, logs } = testSluice({ groupId, routes: [appendRoute(topic, table)], batching: { lingerMs: 50 }, readiness: { maxRetryingMs: 1_000 } });
    await sluice.start();
    const committed = async () => kafka.committedOffsets(groupId, topic);
    await waitFor('partitions 1 and 2 written while 0 is locked', async () => {
      const c = await committed();
      return c.get(1) === '20' && c.get(2) === '20';
    });
    expect((await db.query(`SELECT DISTINCT src_partition FROM ${table} ORDER BY 1`)).rows.map((r) => r.src_partition)).toEqual([1, 2]);
    // Not silent: a warning, and /readyz once the wait passes readiness.maxRetryingMs.
    const reason = await waitFor('/readyz to name the partition waiting for its row', () =>
      sluice.status().readiness.reasons.find((r) => r.startsWith(`claiming ${topic}[0] has been retrying`)),
    );
    expect(reason).toContain('held by another session');
    await waitFor('a warning naming the row', () => logs.some((l) => l.level === 40 && String(l.msg).startsWith(`the offsets rows of ${topic}[0]`)));
    await holder.query('COMMIT');
    await waitFor('partition 0 written once its row is free', async () => (await committed()).get(0) === '20');
    expect(await duplicates(table)).toEqual({ rows: 30, distinct: 30 });
  });

  it('a partition waiting for its locked row is not claimed if another member claimed it meanwhile: that member keeps it', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(2, 'taken');
    const table = await appendTable();
    const db = await database();
    const groupId = uniqueName('group');
    await new OffsetStore(defaults.offsetsTable, groupId).ensureTable(db);
    await db.query(
      `INSERT INTO ${defaults.offsetsTable} (group_id, topic, partition, next_offset, claim) SELECT $1, $2, p, 0, 1 FROM generate_series(0, 1) AS p`,
      [groupId, topic],
    );
    // Another member (this session) holds partition 0's row, and claims it before letting go.
    const other = await database();
    await other.query('BEGIN');
    await other.query(`SELECT 1 FROM ${defaults.offsetsTable} WHERE group_id = $1 AND topic = $2 AND partition = 0 FOR UPDATE`, [groupId, topic]);
    const { sluice, logs } = testSluice({ groupId, routes: [appendRoute(topic, table)], batching: { lingerMs: 50 } });
    await sluice.start();
    await waitFor('partition 1 claimed, partition 0 seen busy', () => logs.some((l) => String(l.msg).startsWith(`the offsets rows of ${topic}[0]`)));
    await other.query(`UPDATE ${defaults.offsetsTable} SET claim = 7 WHERE group_id = $1 AND topic = $2 AND partition = 0`, [groupId, topic]);
    await other.query('COMMIT');
    await waitFor('the partition left to the member that claimed it', () => logs.some((l) => String(l.msg).startsWith('partitions waiting for their offsets rows were claimed by another member')));
    const claims = await db.query(`SELECT partition, claim::int AS claim FROM ${defaults.offsetsTable} WHERE group_id = $1 AND topic = $2 ORDER BY 1`, [groupId, topic]);
    expect(claims.rows).toEqual([{ partition: 0, claim: 7 }, { partition: 1, claim: 2 }]);
  });
});

