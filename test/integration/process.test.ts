import { describe, expect, it } from 'vitest';
import { KafkaHelper, brokers, database, databaseUrl, lockTable, uniqueName, waitFor, waitForSluiceOnLock } from '../helpers/stack.js';
import { landingEnv, spawnSluice } from '../helpers/process.js';

async function landedValues(table: string, topic: string): Promise<Map<string, string>> {
  const db = await database();
  const rows = (await db.query<{ key: string; value: { seq: number } }>(`SELECT convert_from(key, 'UTF8') AS key, value FROM ${table} WHERE topic = $1`, [topic])).rows;
  return new Map(rows.map((r) => [r.key, JSON.stringify(r.value)]));
}

describe('the sluice process', () => {
  it('loses nothing when SIGKILLed mid-stream: after a restart the table equals the expected table', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(3, 'crash');
    const table = uniqueName('landing');
    const groupId = uniqueName('group');
    const expected = new Map<string, string>();
    const records = [];
    for (let seq = 0; seq < 30_000; seq++) {
      const key = `k${seq % 7_000}`;
      const value = JSON.stringify({ seq });
      expected.set(key, value);
      records.push({ key, value });
    }
    await kafka.produce(topic, records);

    // Small batches make the run long enough for the kill to land in the middle of it.
    const env = landingEnv(topic, table, groupId, { SLUICE_LINGER_MS: '50', SLUICE_MAX_BATCH_RECORDS: '100' });
    const first = spawnSluice(env);
    const db = await database();
    await waitFor('the first rows to land', async () => {
      const exists = (await db.query('SELECT to_regclass($1) AS t', [table])).rows[0].t;
      return exists && (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n > 0;
    });
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(await kafka.isFullyCommitted(groupId, topic)).toBe(false);

    const second = spawnSluice(env);
    await waitFor('every offset committed after the restart', () => kafka.isFullyCommitted(groupId, topic), { timeoutMs: 90_000 });
    expect(await landedValues(table, topic)).toEqual(expected);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('on SIGTERM flushes and commits what is buffered, then exits 0', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(2, 'drain');
    const table = uniqueName('landing');
    const groupId = uniqueName('group');
    const proc = spawnSluice(
      landingEnv(topic, table, groupId, {
        SLUICE_LINGER_MS: '500',
        SLUICE_MAX_BATCH_RECORDS: '100000',
        SLUICE_STATS_INTERVAL_MS: '100',
      }),
    );
    await waitFor('sluice to join the group', () => proc.logs.some((l) => l.msg === 'joined the group'));
    const records = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ seq: i }) }));
    await kafka.produce(topic, records);
    await waitFor('all 50 records buffered', () => proc.logs.some((l) => l.msg === 'progress' && l.buffered === 50), { intervalMs: 10 });
    proc.child.kill('SIGTERM');
    const exit = await proc.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    const draining = proc.logs.find((l) => String(l.msg).startsWith('draining'));
    expect(draining?.bufferedRecords).toBeGreaterThan(0);
    expect(proc.logs.some((l) => l.msg === 'sluice stopped')).toBe(true);
    expect((await landedValues(table, topic)).size).toBe(50);
    expect(await kafka.isFullyCommitted(groupId, topic)).toBe(true);
  });

  it('SIGTERM with a flush blocked on a lock: exits within shutdownGraceMs + 1 s, commits nothing more, and the next start writes it once', async () => {
    const { kafka, topic, db, table, groupId, env } = await appendRoute('blocked', 2_000);
    const first = spawnSluice(env);
    await waitFor('sluice to join the group', () => first.logs.some((l) => l.msg === 'joined the group'));
    const lock = await lockTable(table);
    await kafka.produce(topic, [{ key: 'k', value: JSON.stringify({ id: 'only' }) }]);
    await waitForSluiceOnLock(groupId);
    const stoppedAt = Date.now();
    first.child.kill('SIGTERM');
    const exit = await first.exited;
    const tookMs = Date.now() - stoppedAt;
    console.log(`SIGTERM with a blocked flush: exited in ${tookMs} ms (shutdownGraceMs 2000), code ${exit.code}`);
    expect(tookMs).toBeLessThan(2_000 + 1_000);
    expect(exit.code).toBe(1); // the grace time ran out: a failure, said so
    await lock.release();
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);

    const second = spawnSluice(env);
    await waitFor('the record written by the next start', async () => (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n === 1);
    await waitFor('its offset committed', () => kafka.isFullyCommitted(groupId, topic));
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(1);
  });

  it("SIGTERM during a slow flush, inside a pod's budget: exits 0 once the flush lands, loses nothing, and the next member starts at the committed offset", async () => {
    // The pod's budget as the manifests set it: terminationGracePeriodSeconds 45 > shutdownGraceMs 30 s; here 10 s.
    const { kafka, topic, db, table, groupId, env } = await appendRoute('slow', 10_000);
    const first = spawnSluice(env);
    await waitFor('sluice to join the group', () => first.logs.some((l) => l.msg === 'joined the group'));
    await kafka.produce(topic, Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `a${i}` }) })));
    await waitFor('the first records written', async () => (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n === 200);
    // A slow flush: the table locked under the next batch, SIGTERM while it waits, the lock gone 2 s later.
    const lock = await lockTable(table);
    await kafka.produce(topic, Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `b${i}` }) })));
    await waitForSluiceOnLock(groupId);
    const stoppedAt = Date.now();
    first.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // the slow part of the flush, not a wait for readiness
    await lock.release();
    const exit = await first.exited;
    const tookMs = Date.now() - stoppedAt;
    expect(exit.code).toBe(0);
    expect(tookMs).toBeLessThan(10_000);
    const written = (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
    const committed = Number((await kafka.committedOffsets(groupId, topic)).get(0));
    // Nothing committed that is not written, nothing written past what is committed (append: rows = records).
    expect(written).toBe(committed);

    await kafka.produce(topic, Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `c${i}` }) })));
    const second = spawnSluice(env);
    await waitFor('every record written once', async () => (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n === 600);
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    const ids = (await db.query(`SELECT id FROM ${table}`)).rows.map((r: { id: string }) => r.id);
    expect(new Set(ids).size).toBe(600); // none twice
  });

  it('refuses a bad configuration value with a message that names the variable, the value and what is allowed', async () => {
    const bad = spawnSluice({
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: 'postgres://sluice:hunter2@127.0.0.1:5432/test',
      SLUICE_TOPICS: 'anything',
      SLUICE_LINGER_MS: '5000',
    });
    expect((await bad.exited).code).toBe(2);
    expect(bad.stderr()).toContain('SLUICE_LINGER_MS="5000"');
    expect(bad.stderr()).toContain('an integer from 50 to 500');
    expect(bad.stderr()).not.toContain('hunter2');

    const noDatabase = spawnSluice({ KAFKA_BROKERS: brokers().join(','), SLUICE_TOPICS: 'anything' });
    expect((await noDatabase.exited).code).toBe(2);
    expect(noDatabase.stderr()).toContain('DATABASE_URL');

    const badRoute = spawnSluice({
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      SLUICE_ROUTES: JSON.stringify([{ topic: 't', table: 'orders; DROP TABLE x', key: ['id'], columns: { id: 'id' } }]),
    });
    expect((await badRoute.exited).code).toBe(2);
    expect(badRoute.stderr()).toContain('SLUICE_ROUTES (routes.0.table)');
  });

  it('stops at start-up with an error naming a route table that does not exist', async () => {
    const missing = uniqueName('missing');
    const proc = spawnSluice({
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      SLUICE_ROUTES: JSON.stringify([{ topic: 't', table: missing, key: ['id'], columns: { id: { from: 'key' } } }]),
    });
    expect((await proc.exited).code).toBe(1);
    const fatal = proc.logs.find((l) => l.level === 60);
    expect(String(fatal?.msg)).toContain(`table ${missing} does not exist`);
  });

  it('halted by a systemic error, stays up: /healthz 200, /readyz 503 with the reason; SIGTERM then exits 1', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'halt');
    const table = uniqueName('landing');
    const groupId = uniqueName('group');
    await kafka.produce(topic, [{ key: 'a', value: '{"n": 1}' }]);
    const proc = spawnSluice(landingEnv(topic, table, groupId, { SLUICE_LINGER_MS: '50' }));
    await waitFor('first record committed', () => kafka.isFullyCommitted(groupId, topic));
    const port = await waitFor('the health port', () => proc.logs.find((l) => l.msg === 'HTTP endpoints listening')?.port as number | undefined);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

    const db = await database();
    await db.query(`DROP TABLE ${table}`);
    await kafka.produce(topic, [{ key: 'b', value: '{"n": 2}' }]);
    const ready = await waitFor('unready', async () => {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      return response.status === 503 && ((await response.json()) as { reasons: string[] });
    });
    expect(ready.reasons[0]).toContain(`relation "${table}" does not exist`);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { state: string };
    expect(status.state).toBe('halted');
    expect(proc.child.exitCode).toBeNull();
    expect((await kafka.committedOffsets(groupId, topic)).get(0)).toBe('1');

    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(1);
  });
});

/** A topic and an append table (rows = records, so a record written twice shows), and a sluice's environment for them. */
async function appendRoute(name: string, shutdownGraceMs: number) {
  const kafka = await KafkaHelper.connect();
  const topic = await kafka.createTopic(1, name);
  const db = await database();
  const table = uniqueName('events');
  await db.query(`CREATE TABLE ${table} (row_id bigserial PRIMARY KEY, id text NOT NULL)`);
  const groupId = uniqueName('group');
  const env = {
    KAFKA_BROKERS: brokers().join(','),
    DATABASE_URL: databaseUrl(),
    SLUICE_GROUP_ID: groupId,
    SLUICE_ROUTES: JSON.stringify([{ topic, table, mode: 'append', columns: { id: 'id' } }]),
    SLUICE_LINGER_MS: '50',
    SLUICE_SHUTDOWN_GRACE_MS: String(shutdownGraceMs),
  };
  return { kafka, topic, db, table, groupId, env };
}
