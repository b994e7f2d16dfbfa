import type pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { RouteOptions, Sluice } from '../../src/index.js';
import { defaults } from '../../src/config/options.js';
import { DlqHeaders } from '../../src/dlq/dlq-headers.js';
import { resolveOptions } from '../../src/config/resolve-options.js';
import { OffsetStore } from '../../src/sinks/offset-store.js';
import { PostgresSink } from '../../src/sinks/postgres-sink.js';
import { sluiceVersion } from '../../src/version.js';
import { javaProducerAvailable, produceWithJavaClient } from '../helpers/java-producer.js';
import { KafkaHelper, brokers, database, uniqueName, waitFor } from '../helpers/stack.js';
import { testSluice } from '../helpers/sluice.js';

/**
 * Failure model: poison records go to the DLQ with provenance while the rest of their batch is written once;
 * transient failures are retried without touching the DLQ; systemic failures and a burst of poison stop
 * consumption. Everything against the real broker and database.
 */

/** A table whose every committed write is also counted in an audit table, to prove "written once". */
async function auditedTable(): Promise<{ db: pg.Client; table: string; audit: string }> {
  const db = await database();
  const table = uniqueName('orders');
  const audit = `${table}_audit`;
  await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, name text NOT NULL, amount numeric(12,2), payload jsonb)`);
  await db.query(`CREATE TABLE ${audit} (id text NOT NULL)`);
  await db.query(
    `CREATE FUNCTION ${audit}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${audit} VALUES (NEW.id); RETURN NEW; END $$`,
  );
  await db.query(`CREATE TRIGGER ${audit}_trg AFTER INSERT OR UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${audit}_fn()`);
  return { db, table, audit };
}

function route(topic: string, table: string): RouteOptions {
  return {
    topic,
    table,
    key: ['id'],
    columns: { id: { from: 'key' }, name: { from: 'field' }, amount: { from: 'field' }, payload: { from: 'value' } },
  };
}

const good = (i: number, partition?: number) => ({
  key: `k${i}`,
  value: JSON.stringify({ name: `n${i}`, amount: i % 1000 }),
  ...(partition === undefined ? {} : { partition }),
});

async function count(db: pg.Client, sql: string): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${sql}) q`)).rows[0]!.n;
}

async function readyz(sluice: Sluice): Promise<{ status: number; body: { ready: boolean; reasons: string[] } }> {
  const response = await fetch(`http://127.0.0.1:${sluice.httpAddress!.port}/readyz`);
  return { status: response.status, body: (await response.json()) as { ready: boolean; reasons: string[] } };
}

describe('failures: poison to the DLQ, transient retried, systemic and bursts stop consumption', () => {
  it('one invalid JSON record in a batch of 1,000: 999 rows, one DLQ record with the original bytes and every provenance header, all offsets committed', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'badjson');
    const { db, table } = await auditedTable();
    const poisonValue = '{"name": "n500", "amount": 500, "note": tru}'; // one object to the byte scan; PostgreSQL rejects it
    const records = Array.from({ length: 1_000 }, (_, i) => (i === 500 ? { key: 'k500', value: poisonValue } : good(i)));
    await kafka.producer.send({
      topic,
      acks: -1,
      messages: records.map((r, i) => ({ ...r, headers: i === 500 ? { 'trace-id': 'abc-500', origin: 'upstream' } : {} })),
    });
    const { sluice, groupId } = testSluice({ routes: [route(topic, table)], batching: { lingerMs: 500, maxBatchRecords: 1_000 } });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));

    expect(await count(db, `SELECT id FROM ${table}`)).toBe(999);
    expect(await count(db, `SELECT id FROM ${table} WHERE id = 'k500'`)).toBe(0);
    expect((await kafka.committedOffsets(groupId, topic)).get(0)).toBe('1000');

    const source = (await kafka.readAll(topic))[500]!;
    const dlq = await kafka.readAll(`${topic}.dlq`);
    expect(dlq).toHaveLength(1);
    const dead = dlq[0]!;
    expect(dead.key?.toString()).toBe('k500');
    expect(dead.value?.equals(Buffer.from(poisonValue))).toBe(true);
    expect(dead.headers['trace-id']).toBe('abc-500');
    expect(dead.headers.origin).toBe('upstream');
    const h = dead.headers;
    expect(h[DlqHeaders.sourceTopic]).toBe(topic);
    expect(h[DlqHeaders.sourcePartition]).toBe('0');
    expect(h[DlqHeaders.sourceOffset]).toBe('500');
    expect(h[DlqHeaders.sourceTimestamp]).toBe(source.timestamp);
    expect(h[DlqHeaders.consumerGroup]).toBe(groupId);
    expect(h[DlqHeaders.errorCode]).toBe('SLUICE_POISON_RECORD');
    expect(h[DlqHeaders.errorClass]).toBe('PoisonRecordError');
    expect(h[DlqHeaders.errorMessage]).toMatch(new RegExp(`record ${topic}\\[0\\]@500 cannot be written: value is not valid JSON`));
    expect(String(h[DlqHeaders.errorStack])).toContain('PoisonRecordError');
    expect(h[DlqHeaders.sqlState]).toBe('22P02');
    expect(h[DlqHeaders.attempts]).toBe('1');
    expect(Date.parse(String(h[DlqHeaders.failedAt]))).toBeGreaterThan(Date.now() - 120_000);
    expect(h[DlqHeaders.sluiceVersion]).toBe(sluiceVersion);
    expect(sluice.status().dlq.sentRecords).toBe(1);
  });

  it('a NOT NULL violation and a \\u0000 in a jsonb value go to the DLQ with their SQLSTATE; every other record is written once', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'rowerrors');
    const { db, table, audit } = await auditedTable();
    const records = Array.from({ length: 200 }, (_, i) => good(i));
    records[50] = { key: 'k50', value: JSON.stringify({ name: null, amount: 50 }) };
    records[150] = { key: 'k150', value: '{"name": "n150", "amount": 150, "note": "a\\u0000b"}' };
    await kafka.produce(topic, records);
    const { sluice, groupId } = testSluice({ routes: [route(topic, table)], batching: { lingerMs: 500, maxBatchRecords: 1_000 } });
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));

    expect(await count(db, `SELECT id FROM ${table}`)).toBe(198);
    // The audit trigger fires once per committed row write: a record written twice would show twice.
    expect(await count(db, `SELECT id FROM ${audit}`)).toBe(198);
    expect(await count(db, `SELECT id FROM ${audit} GROUP BY id HAVING count(*) > 1`)).toBe(0);
    const dlq = await kafka.readAll(`${topic}.dlq`);
    const byOffset = new Map(dlq.map((r) => [r.headers[DlqHeaders.sourceOffset], r.headers]));
    expect([...byOffset.keys()].sort()).toEqual(['150', '50']);
    expect(byOffset.get('50')![DlqHeaders.sqlState]).toBe('23502');
    expect(byOffset.get('150')![DlqHeaders.sqlState]).toBe('22P05');
    expect(String(byOffset.get('50')![DlqHeaders.errorMessage])).toContain('null value in column "name"');
  });

  it('10 poison records scattered in a batch of 5,000 cost far fewer statements than records', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'scattered');
    const { db, table, audit } = await auditedTable();
    const poison = new Set(Array.from({ length: 10 }, (_, k) => 137 + k * 487));
    const records = Array.from({ length: 5_000 }, (_, i) =>
      poison.has(i) ? { key: `k${i}`, value: JSON.stringify({ name: null, amount: i }) } : good(i),
    );
    await kafka.produce(topic, records, 5_000);
    const { sluice, groupId } = testSluice({ routes: [route(topic, table)], batching: { lingerMs: 500, maxBatchRecords: 5_000 } });
    const batches: number[] = [];
    sluice.events.on('flush', (flush) => batches.push(flush.records));
    await sluice.start();
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));

    expect(await count(db, `SELECT id FROM ${table}`)).toBe(4_990);
    expect(await count(db, `SELECT id FROM ${audit}`)).toBe(4_990);
    expect(await kafka.recordCount(`${topic}.dlq`)).toBe(10);
    const statements = sluice.status().statements;
    console.log(`10 poison in 5,000 records (batches: ${batches.join(', ')}): ${statements} statements sent, BEGIN/COMMIT/savepoints included`);
    expect(statements).toBeLessThan(500);
  });

  it('PostgreSQL unreachable for ~20 s mid-stream: no DLQ record, readiness false meanwhile, nothing lost once it is back', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(3, 'outage');
    const { db, table, audit } = await auditedTable();
    // sluice's own role: its backends can be terminated and new ones refused (too many connections, SQLSTATE 53300)
    // without touching anyone else's.
    const role = uniqueName('sluice_outage');
    await db.query(`CREATE ROLE ${role} LOGIN`);
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO ${role}`);
    await db.query(`GRANT INSERT ON ${audit} TO ${role}`);
    // The offsets table is made by a user who may create tables; sluice's role only writes it.
    await new OffsetStore(defaults.offsetsTable, 'any').ensureTable(db);
    await db.query(`GRANT SELECT, INSERT, UPDATE ON sluice_offsets TO ${role}`);
    const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
    url.username = role;
    url.password = '';
    const { sluice, groupId } = testSluice({
      routes: [route(topic, table)],
      batching: { lingerMs: 100 },
      database: { url: url.toString() },
    });
    let produced = 0;
    const produceSome = async (n: number) => {
      await kafka.produce(topic, Array.from({ length: n }, (_, i) => good(produced + i)));
      produced += n;
    };
    await produceSome(3_000);
    await sluice.start();
    await waitFor('rows before the outage', async () => (await count(db, `SELECT id FROM ${table}`)) === 3_000);
    expect((await readyz(sluice)).status).toBe(200);

    const outageStarted = Date.now();
    await db.query(`ALTER ROLE ${role} CONNECTION LIMIT 0`);
    await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
    let sawUnready = false;
    let sawRetrying = false;
    // The stream goes on during the outage; the outage itself lasts about 20 s.
    while (Date.now() - outageStarted < 20_000) {
      await produceSome(200);
      const ready = await readyz(sluice);
      if (ready.status === 503) {
        sawUnready = true;
        expect(ready.body.reasons.join(' ')).toContain('PostgreSQL is unreachable');
      }
      if (sluice.status().batching.retryingPartitions > 0) sawRetrying = true;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(sawUnready).toBe(true);
    expect(sawRetrying).toBe(true);
    expect(sluice.state).toBe('running');
    expect((await fetch(`http://127.0.0.1:${sluice.httpAddress!.port}/healthz`)).status).toBe(200);
    await db.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);

    await waitFor('ready again', async () => (await readyz(sluice)).status === 200);
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic), { timeoutMs: 90_000 });
    expect(await count(db, `SELECT id FROM ${table}`)).toBe(produced);
    expect(await kafka.recordCount(`${topic}.dlq`)).toBe(0);
    expect(sluice.status().dlq.sentRecords).toBe(0);
    await sluice.stop();
    await db.query(`REVOKE ALL ON ${table}, ${audit}, sluice_offsets FROM ${role}`);
    await db.query(`DROP ROLE ${role}`);
  });

  it('an idle pipeline does not report PostgreSQL unreachable after it is back: the sink probes it', async () => {
    const db = await database();
    const table = uniqueName('idle');
    await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, name text NOT NULL, amount numeric(12,2), payload jsonb)`);
    const role = uniqueName('sluice_idle');
    await db.query(`CREATE ROLE ${role} LOGIN`);
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO ${role}`);
    await new OffsetStore(defaults.offsetsTable, 'any').ensureTable(db);
    await db.query(`GRANT SELECT, INSERT, UPDATE ON sluice_offsets TO ${role}`);
    const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
    url.username = role;
    url.password = '';
    const options = resolveOptions({ kafka: { brokers: ['127.0.0.1:1'], groupId: uniqueName('group') }, database: { url: url.toString() }, routes: [route('idle', table)] });
    const sink = new PostgresSink(options, pino({ level: 'silent' }));
    onTestFinished(async () => {
      await sink.close();
      await db.query(`REVOKE ALL ON ${table}, sluice_offsets FROM ${role}`);
      await db.query(`DROP ROLE ${role}`);
    });
    await sink.start();
    // The database goes away while sluice needs it (a claim in a rebalance), then comes back; nothing else asks.
    await db.query(`ALTER ROLE ${role} CONNECTION LIMIT 0`);
    await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
    await expect(sink.claim([{ topic: 'idle', partitions: [0] }])).rejects.toMatchObject({ unavailable: true });
    expect(sink.available).toBe(false);
    await db.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);
    await waitFor('the sink to find the database again by itself', () => sink.available, { timeoutMs: 15_000 });
  });

  it('a flush stuck on a lock is cancelled by statementTimeoutMs and retried, never dead-lettered; it lands once the lock is gone', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'stuck');
    const { db, table } = await auditedTable();
    await db.query('BEGIN');
    await db.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    await kafka.produce(topic, Array.from({ length: 100 }, (_, i) => good(i)));
    const { sluice, groupId, logs } = testSluice({
      routes: [route(topic, table)],
      batching: { lingerMs: 50 },
      database: { statementTimeoutMs: 300 },
    });
    await sluice.start();
    await waitFor('a flush cancelled by the statement timeout', () =>
      logs.some((l) => String(l.msg).startsWith('flush failed, will retry') && String(l.msg).includes('SQLSTATE 57014')),
    );
    expect(sluice.status().batching.retryingPartitions).toBe(1);
    await db.query('COMMIT');
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await count(db, `SELECT id FROM ${table}`)).toBe(100);
    expect(await kafka.recordCount(`${topic}.dlq`)).toBe(0);
  });

  it('DLQ topic not writable: nothing is committed past the poison record, other partitions keep flowing, and it catches up once the DLQ takes records', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(2, 'dlqdown');
    // A DLQ topic that takes no record at all: the broker refuses every write (MESSAGE_TOO_LARGE).
    await kafka.admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: `${topic}.dlq`, numPartitions: 2, configEntries: [{ name: 'max.message.bytes', value: '1' }] }],
    });
    const { db, table } = await auditedTable();
    const p0 = Array.from({ length: 100 }, (_, i) => (i === 40 ? { key: 'p0-40', value: 'not json', partition: 0 } : { ...good(i, 0), key: `p0-${i}` }));
    const p1 = Array.from({ length: 100 }, (_, i) => ({ ...good(i, 1), key: `p1-${i}` }));
    await kafka.produce(topic, [...p0, ...p1]);
    const { sluice, groupId, logs } = testSluice({
      routes: [route(topic, table)],
      batching: { lingerMs: 100 },
      // The operator fixes the DLQ topic while sluice waits: enough attempts for that, and unready meanwhile.
      dlq: { maxAttempts: 1_000 },
      readiness: { maxRetryingMs: 1_000 },
    });
    await sluice.start();

    await waitFor('partition 1 committed', async () => (await kafka.committedOffsets(groupId, topic)).get(1) === '100');
    await waitFor('partition 0 retrying', () => sluice.status().batching.retryingPartitions === 1);
    const unready = await waitFor('unready, naming partition 0', async () => {
      const ready = await readyz(sluice);
      return ready.status === 503 && ready.body.reasons.find((r) => r.startsWith(`${topic}[0] has been retrying`));
    });
    expect(unready).toContain(`${topic}.dlq`);
    await kafka.produce(topic, Array.from({ length: 100 }, (_, i) => ({ ...good(i, 1), key: `p1-${100 + i}` })));
    await waitFor('partition 1 keeps flowing', async () => (await kafka.committedOffsets(groupId, topic)).get(1) === '200');
    const stuck = Number((await kafka.committedOffsets(groupId, topic)).get(0));
    expect(stuck).toBeLessThanOrEqual(40);
    expect(await kafka.recordCount(`${topic}.dlq`)).toBe(0);
    expect(logs.some((l) => String(l.msg).includes(`DLQ topic ${topic}.dlq failed`))).toBe(true);

    await kafka.admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: 2 /* TOPIC */, name: `${topic}.dlq`, configEntries: [{ name: 'max.message.bytes', value: '1048588' }] }],
    });
    await waitFor('all offsets committed', () => kafka.isFullyCommitted(groupId, topic), { timeoutMs: 90_000 });
    expect((await readyz(sluice)).status).toBe(200);
    const dlq = await kafka.readAll(`${topic}.dlq`);
    expect(dlq.map((r) => r.headers[DlqHeaders.sourceOffset])).toEqual(['40']);
    expect(Number(dlq[0]!.headers[DlqHeaders.attempts])).toBeGreaterThan(1);
    expect(await count(db, `SELECT id FROM ${table}`)).toBe(299);
  });

  it('a DLQ refusal only an operator can fix halts after dlq.maxAttempts, naming the DLQ topic, the broker error and the fix', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'dlqsmall');
    await kafka.admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: `${topic}.dlq`, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '1' }] }],
    });
    const { table } = await auditedTable();
    await kafka.produce(topic, Array.from({ length: 20 }, (_, i) => (i === 5 ? { key: 'bad', value: 'not json' } : good(i))));
    const { sluice, groupId } = testSluice({ routes: [route(topic, table)], batching: { lingerMs: 100 }, dlq: { maxAttempts: 3 } });
    await sluice.start();
    await waitFor('halted', () => sluice.state === 'halted', { timeoutMs: 30_000 });
    const error = sluice.status().error!;
    expect(error).toContain(`${topic}.dlq`);
    expect(error).toContain('3 attempts');
    expect(error).toContain(`raise max.message.bytes of DLQ topic ${topic}.dlq`);
    expect(Number((await kafka.committedOffsets(groupId, topic)).get(0))).toBeLessThanOrEqual(5);
    await expect(sluice.stop()).rejects.toThrow(`${topic}.dlq`);
  });

  it('a route table dropped mid-stream stops consumption with a message naming the table; nothing goes to the DLQ', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'droptable');
    const { db, table } = await auditedTable();
    await kafka.produce(topic, Array.from({ length: 100 }, (_, i) => good(i)));
    const { sluice, groupId, logs } = testSluice({ routes: [route(topic, table)], batching: { lingerMs: 50 } });
    await sluice.start();
    await waitFor('first records committed', () => kafka.isFullyCommitted(groupId, topic));
    await db.query(`DROP TABLE ${table} CASCADE`);
    await kafka.produce(topic, Array.from({ length: 100 }, (_, i) => good(100 + i)));

    await waitFor('halted', () => sluice.state === 'halted');
    expect(sluice.status().error).toContain(`relation "${table}" does not exist`);
    expect(sluice.status().error).toContain('SQLSTATE 42P01');
    expect(sluice.status().error).toContain('create the table');
    const ready = await readyz(sluice);
    expect(ready.status).toBe(503);
    expect(ready.body.reasons[0]).toContain(table);
    expect((await fetch(`http://127.0.0.1:${sluice.httpAddress!.port}/healthz`)).status).toBe(200);
    expect(logs.some((l) => l.level === 50 && String(l.msg).startsWith('consumption stopped') && String(l.msg).includes(table))).toBe(true);
    expect(await kafka.recordCount(`${topic}.dlq`)).toBe(0);
    expect((await kafka.committedOffsets(groupId, topic)).get(0)).toBe('100');
    await expect(sluice.stop()).rejects.toThrow(table);
    expect(sluice.state).toBe('failed');
  });

  it('2,000 poison records in one batch, far more than one DLQ request can carry, all reach the DLQ and are committed', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'poison_batch');
    const { table } = await auditedTable();
    await kafka.produce(topic, Array.from({ length: 2_000 }, (_, i) => ({ key: `k${i}`, value: `not json ${i}` })));
    // Each DLQ record carries its stack and message headers: together about 7 MB, over the topic's 1 MiB batch limit.
    const { sluice, groupId } = testSluice({ routes: [route(topic, table)], batching: { lingerMs: 200 }, breaker: { maxDlqRatio: 1 } });
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await kafka.recordCount(`${topic}.dlq`)).toBe(2_000);
    expect(sluice.state).toBe('running');
  });

  it('a deferred constraint violated in a batch is isolated like any row-level error, not found at COMMIT', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'deferred');
    const db = await database();
    const table = uniqueName('deferred');
    await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, email text NOT NULL, CONSTRAINT ${table}_email UNIQUE (email) DEFERRABLE INITIALLY DEFERRED)`);
    const records = Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ email: i === 70 ? 'e10' : `e${i}` }) }));
    await kafka.produce(topic, records);
    const { sluice, groupId } = testSluice({ routes: [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, email: 'email' } }], batching: { lingerMs: 100 } });
    await sluice.start();
    await waitFor('every offset committed, or sluice stopped', async () => sluice.state !== 'running' || (await kafka.isFullyCommitted(groupId, topic)));
    expect(sluice.status().error).toBeUndefined();
    expect(await count(db, `SELECT 1 FROM ${table}`)).toBe(99);
    const dlq = await kafka.readAll(`${topic}.dlq`);
    expect(dlq.map((r) => [r.headers[DlqHeaders.sourceOffset], r.headers[DlqHeaders.sqlState]])).toEqual([['70', '23505']]);
  });

  it('a deferred foreign key satisfied later in the batch (child route before parent route) commits, and the one record breaking it is isolated', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'fk');
    const db = await database();
    const parent = uniqueName('parent');
    const child = uniqueName('child');
    await db.query(`CREATE TABLE ${parent} (id text PRIMARY KEY)`);
    await db.query(`CREATE TABLE ${child} (id text PRIMARY KEY, parent_id text NOT NULL REFERENCES ${parent} (id) DEFERRABLE INITIALLY DEFERRED)`);
    // Every record is a parent and its child; one child points at a parent no record brings.
    await kafka.produce(topic, Array.from({ length: 21 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ parent_id: i === 7 ? 'missing' : `k${i}` }) })));
    const { sluice, groupId } = testSluice({
      routes: [
        { topic, table: child, key: ['id'], columns: { id: { from: 'key' }, parent_id: 'parent_id' } },
        { topic, table: parent, key: ['id'], columns: { id: { from: 'key' } } },
      ],
      batching: { lingerMs: 100 },
    });
    await sluice.start();
    await waitFor('every offset committed, or sluice stopped', async () => sluice.state !== 'running' || (await kafka.isFullyCommitted(groupId, topic)));
    expect(sluice.status().error).toBeUndefined();
    expect(await count(db, `SELECT id FROM ${child}`)).toBe(20);
    const dlq = await kafka.readAll(`${topic}.dlq`);
    expect(dlq.map((r) => [r.key?.toString(), r.headers[DlqHeaders.sqlState]])).toEqual([['k7', '23503']]);
  });

  it('headers count in maxRecordBytes: a small value with large headers is a poison record', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'headers');
    const { db, table } = await auditedTable();
    await kafka.producer.send({
      topic,
      messages: [
        { key: 'small', value: JSON.stringify({ name: 'a', amount: 1 }) },
        { key: 'heavy', value: JSON.stringify({ name: 'b', amount: 2 }), headers: { trace: 'x'.repeat(5_000) } },
      ],
    });
    const { sluice, groupId } = testSluice({ routes: [route(topic, table)], batching: { lingerMs: 50 }, validation: { maxRecordBytes: 1_000 } });
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await count(db, `SELECT id FROM ${table}`)).toBe(1);
    const dlq = await kafka.readAll(`${topic}.dlq`);
    expect(dlq.map((r) => r.key?.toString())).toEqual(['heavy']);
    expect(String(dlq[0]!.headers[DlqHeaders.errorMessage])).toContain('key, value and headers hold');
  });

  it.skipIf(!javaProducerAvailable())('headers with no value (null on the wire, as Java producers send) or named like Object.prototype members neither stop the consumer nor keep a record from the DLQ', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'null-header');
    const { db, table } = await auditedTable();
    // kafkajs cannot write such a header: Kafka's own Java client does.
    await produceWithJavaClient(brokers(), topic, [
      { ...good(1), headers: [['marker', null], ['origin', 'upstream'], ['constructor', 'c1']] },
      { key: 'bad', value: '{"name": ', headers: [['marker', null], ['toString', 't1']] },
      good(2),
    ]);
    const { sluice, groupId } = testSluice({ routes: [route(topic, table)], batching: { lingerMs: 50 } });
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await count(db, `SELECT id FROM ${table}`)).toBe(2);
    const dlq = await kafka.readAll(`${topic}.dlq`);
    expect(dlq.map((r) => r.key?.toString())).toEqual(['bad']);
    // The name reaches the DLQ; kafkajs sends the value empty (it cannot write a null one).
    expect(dlq[0]!.headers).toHaveProperty('marker', '');
    expect(dlq[0]!.headers).toHaveProperty('toString', 't1');
    expect(dlq[0]!.headers[DlqHeaders.sourceOffset]).toBe('1');
  });

  it('6 % poison in a stream opens the breaker: consumption stops before the burst drains into the DLQ', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'burst');
    const { db, table } = await auditedTable();
    const records = Array.from({ length: 5_000 }, (_, i) => (i % 50 < 3 ? { key: `k${i}`, value: `not json ${i}` } : good(i)));
    await kafka.produce(topic, records);
    const { sluice, groupId } = testSluice({
      routes: [route(topic, table)],
      batching: { lingerMs: 100, maxBatchRecords: 250 },
      breaker: { maxDlqRatio: 0.05, minRecords: 500, windowMs: 60_000 },
    });
    await sluice.start();
    await waitFor('halted', () => sluice.state === 'halted');
    expect(sluice.status().error).toMatch(/the DLQ breaker opened: \d+ of \d+ records \(6\.0 %\)/);
    expect(sluice.status().breaker.open).toBe(true);
    const ready = await readyz(sluice);
    expect(ready.status).toBe(503);
    expect(ready.body.reasons[0]).toContain('breaker');
    // Flushes already in the database finish; nothing after them is read, written or dead-lettered.
    // Every committed batch had its poison (3 in 50) acknowledged by the DLQ first.
    const { committed, dead } = await waitFor('in-flight flushes committed', async () => {
      const committed = Number((await kafka.committedOffsets(groupId, topic)).get(0));
      const dead = await kafka.recordCount(`${topic}.dlq`);
      return sluice.status().batching.bufferedBytes === 0 && dead === (committed * 3) / 50 && { committed, dead };
    });
    expect(committed).toBeLessThan(5_000);
    expect(dead).toBeLessThan(300);
    await expect(sluice.stop()).rejects.toThrow('breaker');
  });
});
